"""The customer's read position per conversation: the highest seq shown to them on any device.

It is stored, not only relayed, so that a tab that was offline when the customer read elsewhere shows
the right unread count when it comes back (the backlog's conversations carry it), the agent sees
"Seen", and a reply the customer has read is never emailed to them (notifications.py).
"""

from sqlalchemy import bindparam, update

from . import clock, conversations, events, notifications
from .errors import ChatError
from .extensions import db
from .models import Conversation

_conversations = Conversation.__table__
# One conditional UPDATE: two devices reading at once cannot move the position backwards.
_ADVANCE = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"), _conversations.c.customer_read_seq < bindparam("seq"))
    .values(customer_read_seq=bindparam("seq"), customer_read_at=bindparam("now"))
)


def _seq(value: object, last_seq: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= last_seq:
        raise ChatError(400, "invalid_request", "seq must be the number of a message in the conversation.")
    return value


def customer_read(customer_id: int, workstream_id: str, conversation_id: object, seq: object) -> bool:
    """The customer has seen everything up to this message. Only an advance is stored and told to their
    other widgets (which clear their unread counts) and to the agent's console ("Seen"); a repeat or an
    older position changes nothing and is relayed to nobody. Returns whether it advanced."""
    conversation = conversations.customer_conversation(customer_id, workstream_id, conversation_id)
    seq = _seq(seq, conversation.last_seq)
    now = clock.now()
    advanced = db.session.execute(_ADVANCE, {"conversation_id": conversation.id, "seq": seq, "now": now}).rowcount
    if not advanced:
        db.session.rollback()
        return False
    db.session.expire(conversation, ["customer_read_seq", "customer_read_at"])
    notifications.customer_read(conversation, seq)
    frame = {"type": "read", "conversation_id": conversation.id, "seq": seq}
    events.emit(db.session, [events.customer_channel(customer_id, workstream_id)], frame)
    consoles = [events.conversation_channel(conversation.id)]
    if conversation.agent_id:
        consoles.append(events.agent_channel(conversation.agent_id))
    events.emit(db.session, consoles, {**frame, "read_at": clock.iso(now)})
    db.session.commit()
    return True


def view(conversation: Conversation) -> dict:
    """What the console shows as "Seen": the position and when the customer reached it."""
    return {"seq": conversation.customer_read_seq or 0, "at": clock.iso(conversation.customer_read_at)}
