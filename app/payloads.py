"""The JSON shapes of docs/protocol.md, built in one place for HTTP and websocket alike."""

import json
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import aliased

from . import attachments as attachment_files
from . import csat, notifications, read_state
from .clock import iso
from .extensions import db
from .models import Agent, Attachment, Conversation, ConversationLabel, Customer, Label, Message, Rating, Workstream

if TYPE_CHECKING:
    from .posting import Posted


def message(m: "Message | Posted", attachments: list[Attachment] | None = None) -> dict:
    """`attachments`, when the caller has them at hand (a page loads them in one query), saves a lookup."""
    if attachments is None:
        attachments = attachment_files.of_messages([m]).get(m.id, []) if m.attachment_count else []
    return {
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender": m.sender_kind,
        "sender_name": m.sender_name,
        "body": m.body,
        "client_id": m.client_id,
        "created_at": iso(m.created_at),
        "attachments": [attachment_files.describe(a) for a in attachments],
    }


def messages(page: list[Message]) -> list[dict]:
    found = attachment_files.of_messages(page)
    return [message(m, found.get(m.id, [])) for m in page]


def widget_workstream(w: Workstream) -> dict:
    return {
        "id": w.id,
        "name": w.name,
        "mode": w.mode,
        "customer_can_end": w.mode == "live",
        "hide_when_closed": w.hide_when_closed,
    }


def widget_conversation(c: Conversation, rating: Rating | None = None, rated: bool = False) -> dict:
    """`rated`: the caller has looked the rating up already (None then means there is none)."""
    if not rated:
        rating = csat.of(c)
    return {
        "id": c.id,
        "status": c.status,
        "ended": c.ended,
        # Who answers: the agent, or while the conversation is with it, the workstream's bot.
        "agent_name": c.agent.name if c.agent else (c.workstream.bot_name if c.status == "bot" else None),
        "last_seq": c.last_seq,
        # The highest seq the customer has been shown on any device (read_state.py).
        "read_seq": c.customer_read_seq or 0,
        "started_at": iso(c.created_at),
        "ended_at": iso(c.ended_at),
        "rating": csat.payload(rating),
        "rating_wanted": csat.wanted(c, rating),
    }


def labels_of(conversation_id: int) -> list[Label]:
    return _labels([conversation_id]).get(conversation_id, [])


def _labels(conversation_ids: list[int]) -> dict[int, list[Label]]:
    found: dict[int, list[Label]] = {}
    rows = db.session.execute(
        select(ConversationLabel.conversation_id, Label)
        .join(Label, ConversationLabel.label_id == Label.id)
        .where(ConversationLabel.conversation_id.in_(conversation_ids))
        .order_by(Label.name)
    )
    for conversation_id, label in rows:
        found.setdefault(conversation_id, []).append(label)
    return found


_earlier = aliased(Message)


def last_messages_query(conversation_ids: list[int]):
    """Per conversation, one backward step along the (conversation_id, seq) index to its last message
    from a person, then that message by the same index."""
    seq = (
        select(_earlier.seq)
        .where(_earlier.conversation_id == Conversation.id, _earlier.sender_kind != "system")
        .order_by(_earlier.seq.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    latest = select(Conversation.id, seq.label("seq")).where(Conversation.id.in_(conversation_ids)).subquery()
    return select(Message).join(latest, (Message.conversation_id == latest.c.id) & (Message.seq == latest.c.seq))


def last_messages(conversations: list[Conversation]) -> dict[int, Message]:
    """Each conversation's last message from a person (the preview skips automated ones), in one query."""
    ids = [c.id for c in conversations if c.last_seq]
    if not ids:
        return {}
    return {m.conversation_id: m for m in db.session.scalars(last_messages_query(ids))}


def _load(model, ids: set) -> list:
    """Rows the summaries' relations point to, in one query, for those not in the session already:
    `c.workstream` and the like then come from the identity map without a query each. The identity
    map holds rows only while something else does, so the caller keeps the list until it is done."""
    held = db.session.identity_map
    missing = [i for i in ids if i is not None and held.get(db.session.identity_key(model, i)) is None]
    return db.session.scalars(select(model).where(model.id.in_(missing))).all() if missing else []


def summaries(conversations: list[Conversation]) -> list[dict]:
    """The console's summaries of these conversations from a constant number of queries, however many
    there are: the rows they refer to, last messages, their attachments, labels, ratings and opt-outs
    are each read for all of them at once."""
    if not conversations:
        return []
    # Kept until the summaries are built (see _load).
    _related = [
        _load(Workstream, {c.workstream_id for c in conversations}),
        _load(Customer, {c.customer_id for c in conversations}),
        _load(Agent, {c.agent_id for c in conversations}),
    ]
    ids = [c.id for c in conversations]
    last = last_messages(conversations)
    files = attachment_files.of_messages(last.values())
    labels = _labels(ids)
    ended = [c.id for c in conversations if c.ended]
    ratings = (
        {r.conversation_id: r for r in db.session.scalars(select(Rating).where(Rating.conversation_id.in_(ended)))}
        if ended
        else {}
    )
    opted_out = notifications.opted_out_of(conversations)
    result = []
    for c in conversations:
        m = last.get(c.id)
        result.append(
            {
                **widget_conversation(c, ratings.get(c.id), rated=True),
                "version": c.version,
                "workstream": {"id": c.workstream.id, "name": c.workstream.name, "mode": c.workstream.mode},
                "customer": {
                    "id": c.customer.id,
                    "sub": c.customer.sub,
                    "display_name": c.customer.label(),
                    "authenticated": c.customer.auth_setting_id is not None,
                },
                "context": json.loads(c.context) if c.context else {},
                "locale": c.locale,
                "offer_expires_at": iso(c.offer_expires_at),
                "agent": {"id": c.agent.id, "name": c.agent.name} if c.agent else None,
                "last_message": message(m, files.get(m.id, [])) if m else None,
                "labels": [{"id": lb.id, "name": lb.name, "colour": lb.colour} for lb in labels.get(c.id, [])],
                "updated_at": iso(c.updated_at),
                "customer_read": read_state.view(c),
                "email": notifications.view(c, opted_out),
            }
        )
    return result


def summary(c: Conversation) -> dict:
    return summaries([c])[0]


def agent(a: Agent) -> dict:
    return {
        "id": a.id,
        "name": a.name,
        "presence": a.presence,
        "presence_changed_at": iso(a.presence_changed_at),
        "disabled": a.disabled_at is not None,
    }
