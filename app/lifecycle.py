"""What every lifecycle step shares: recording a state change and emitting what it means to whom.

Steps live in conversations.py (messages, start, end, park, resume), routing.py (assignment, presence)
and timers.py (what time triggers); each writes through these helpers, in its own transaction.
"""

from . import capacity, clock, events, payloads
from .extensions import db
from .models import Agent, Conversation, ConversationEvent


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


def change_status(conversation: Conversation, to_status: str, actor_kind: str, actor_id: int | None) -> None:
    record(conversation, conversation.status, to_status, actor_kind, actor_id)
    conversation.status = to_status
    conversation.updated_at = clock.now()


def announce(conversation: Conversation, *, widget: bool = True, console: bool = True) -> None:
    """Emit the conversation's state to its customer's widgets and to the agents' consoles."""
    db.session.flush()
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
