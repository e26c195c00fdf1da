"""What every lifecycle step shares: recording a state change and emitting what it means to whom.

Steps live in conversations.py (messages, start, end, park, resume), routing.py (assignment, presence)
and timers.py (what time triggers); each writes through these helpers, in its own transaction.
"""

from sqlalchemy import bindparam, insert, update

from . import capacity, clock, events, notifications, payloads, webhooks
from .extensions import db
from .models import Agent, Attachment, Conversation, ConversationEvent, Message


def record(
    conversation: Conversation, from_status: str | None, to_status: str, actor_kind: str, actor_id: int | None
) -> None:
    db.session.add(
        ConversationEvent(
            conversation_id=conversation.id,
            from_status=from_status,
            to_status=to_status,
            actor_kind=actor_kind,
            actor_id=actor_id,
            created_at=clock.now(),
        )
    )
    webhooks.status_changed(conversation, from_status, to_status, actor_kind)


def change_status(conversation: Conversation, to_status: str, actor_kind: str, actor_id: int | None) -> None:
    record(conversation, conversation.status, to_status, actor_kind, actor_id)
    conversation.status = to_status
    conversation.updated_at = clock.now()


_conversations = Conversation.__table__
_NEXT_VERSION = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"))
    .values(version=_conversations.c.version + 1)
)


def announce(conversation: Conversation, *, widget: bool = True, console: bool = True) -> None:
    """Emit the conversation's state to its customer's widgets and to the agents' consoles."""
    db.session.flush()
    if console:
        # Raised in the database, under the row's write lock, and the row read back after it: of two
        # transactions announcing one conversation, the one that commits later sends the higher version
        # with the state it commits, not one it read before the other committed.
        db.session.execute(_NEXT_VERSION, {"conversation_id": conversation.id})
        db.session.refresh(conversation)
    if widget:
        events.emit(
            db.session,
            [events.customer_channel(conversation.customer_id, conversation.workstream_id)],
            {"type": "conversation", "conversation": payloads.widget_conversation(conversation)},
        )
    if console:
        events.emit(
            db.session,
            [events.CONSOLE_CHANNEL],
            {"type": "conversation", "conversation": payloads.summary(conversation)},
        )


def notify(agent_id: int, kind: str, conversation: Conversation) -> None:
    """Something needs this agent's attention: a conversation was assigned to them, or its customer
    came back. The console shows a badge, plays a sound and raises a browser notification."""
    events.emit(
        db.session,
        [events.agent_channel(agent_id)],
        {"type": "notify", "kind": kind, "conversation": payloads.summary(conversation)},
    )
    notifications.agent_notified(agent_id, kind, conversation)


def change_presence(agent: Agent, presence: str) -> None:
    """Set by the agent, or by the timers (inactive after a missed offer, offline without a console)."""
    agent.presence = presence
    agent.presence_changed_at = clock.now()
    announce_agent(agent)


def announce_agent(agent: Agent) -> None:
    """The agent's presence (everyone's consoles) and capacity (their own) after a change."""
    db.session.flush()
    load = capacity.loads(clock.now(), [agent.id]).get(agent.id, capacity.Load())
    events.emit(db.session, [events.CONSOLE_CHANNEL], {"type": "agent", "agent": payloads.agent(agent)})
    events.emit(
        db.session,
        [events.agent_channel(agent.id)],
        {"type": "capacity", "capacity": capacity.capacity_view(agent, load)},
    )


# Built once: constructing a statement costs more than SQLite takes to run it (see bench/lifecycle.py).
_NEXT_SEQ_QUIETLY = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"))
    .values(last_seq=_conversations.c.last_seq + 1)
    .returning(_conversations.c.last_seq)
)
_NEXT_SEQ = _NEXT_SEQ_QUIETLY.values(updated_at=bindparam("now"))
_INSERT_MESSAGE = insert(Message.__table__).returning(Message.__table__.c.id)


def append_message(
    conversation: Conversation,
    sender_kind: str,
    body: str,
    client_id: str | None,
    agent: Agent | None = None,
    attachments: list[Attachment] = (),
    sender_name: str | None = None,
) -> Message:
    """Add a message in the caller's transaction and emit it to the customer, the agent and watchers;
    `attachments` (checked by attachments.claimable) become the message's. The sender's name is the
    agent's, or `sender_name` (a bot's)."""
    now = clock.now()
    # The next sequence number is taken by one atomic UPDATE in this transaction: no gaps, no repeats.
    # Automated messages are not activity: they must not keep an abandoned conversation from closing.
    if sender_kind == "system":
        seq = db.session.execute(_NEXT_SEQ_QUIETLY, {"conversation_id": conversation.id}).scalar_one()
    else:
        seq = db.session.execute(_NEXT_SEQ, {"conversation_id": conversation.id, "now": now}).scalar_one()
    db.session.expire(conversation, ["last_seq", "updated_at"])
    values = {
        "conversation_id": conversation.id,
        "seq": seq,
        "sender_kind": sender_kind,
        "sender_agent_id": agent.id if agent else None,
        "sender_name": agent.name if agent else sender_name,
        "body": body,
        "client_id": client_id,
        "created_at": now,
        "attachment_count": len(attachments),
    }
    # A Core INSERT: the ORM's unit of work costs more than the rest of a message's path. The object
    # returned is a plain, unattached record of the row just written.
    message = Message(id=db.session.execute(_INSERT_MESSAGE, values).scalar_one(), **values)
    for attachment in attachments:
        attachment.message_id = message.id
        attachment.conversation_id = conversation.id
    channels = [
        events.customer_channel(conversation.customer_id, conversation.workstream_id),
        events.conversation_channel(conversation.id),
    ]
    if conversation.agent_id:
        channels.append(events.agent_channel(conversation.agent_id))
    events.emit(db.session, channels, {"type": "message", "message": payloads.message(message, list(attachments))})
    webhooks.message_created(conversation, message)
    return message
