"""Customer satisfaction: once an agent has ended a conversation, its customer may rate it, once."""

from sqlalchemy.exc import IntegrityError

from . import clock, conversations, lifecycle, webhooks
from .errors import ChatError
from .extensions import db
from .models import Conversation, Customer, Rating, Workstream

MAX_COMMENT_CHARS = 1000


def payload(rating: Rating | None) -> dict | None:
    return {"score": rating.score, "comment": rating.comment} if rating else None


def of(conversation: Conversation) -> Rating | None:
    # Only an ended conversation can have one: the common case needs no query.
    return db.session.get(Rating, conversation.id) if conversation.ended else None


def wanted(conversation: Conversation, rating: Rating | None) -> bool:
    """Ask for a rating: the workstream asks, an agent answered and it has ended, and none is given yet.
    The workstream last: for a conversation still going, which is most of them, it is not loaded."""
    return (
        conversation.ended
        and conversation.agent_id is not None
        and rating is None
        and conversation.workstream.csat_enabled
    )


def rate(customer: Customer, workstream: Workstream, conversation_id: object, score: object, comment: object) -> Rating:
    conversation = conversations.customer_conversation(customer.id, workstream.id, conversation_id)
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise ChatError(400, "invalid_request", "score must be a whole number from 1 to 5.")
    if comment is not None and not isinstance(comment, str):
        raise ChatError(400, "invalid_request", "comment must be text.")
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT_CHARS:
        raise ChatError(400, "comment_too_long", f"A comment is limited to {MAX_COMMENT_CHARS} characters.")
    rating = of(conversation)
    if rating is not None:
        raise ChatError(409, "already_rated", "This conversation has been rated already.")
    if not wanted(conversation, None):
        raise ChatError(409, "not_ratable", "Only a conversation an agent has ended can be rated.")
    rating = Rating(conversation_id=conversation.id, score=score, comment=text, created_at=clock.now())
    db.session.add(rating)
    lifecycle.announce(conversation)
    # In the rating's transaction: a second device's refused rating sends nothing.
    webhooks.rating_given(conversation, rating)
    try:
        db.session.commit()
    except IntegrityError:
        # Two devices rating at once: the primary key lets only one in.
        db.session.rollback()
        raise ChatError(409, "already_rated", "This conversation has been rated already.") from None
    return rating
