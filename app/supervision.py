"""What supervisors (and admins) do: see every current conversation of the team and move work around."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from . import clock, conversations, lifecycle, routing
from .errors import ChatError, not_found
from .extensions import db
from .models import Agent, Conversation

SUPERVISING_ROLES = ("supervisor", "admin")
TEAM_STATUSES = ("bot", "open", "active", "waiting", "wrap_up")
# The all-conversations view is for a team's day, not an archive (that is what search is for).
MAX_TEAM_CONVERSATIONS = 1000


def require(agent: Agent) -> None:
    if agent.role not in SUPERVISING_ROLES:
        raise ChatError(403, "forbidden", "Only supervisors and admins see the whole team's work.")


def team_conversations(agent: Agent) -> list[Conversation]:
    """Every current and wrap-up conversation (those with the bot too), oldest first."""
    require(agent)
    return list(
        db.session.scalars(
            select(Conversation)
            .where(Conversation.status.in_(TEAM_STATUSES))
            .options(
                selectinload(Conversation.customer),
                selectinload(Conversation.workstream),
                selectinload(Conversation.agent),
            )
            .order_by(Conversation.id)
            .limit(MAX_TEAM_CONVERSATIONS)
        )
    )


def reassign(supervisor: Agent, conversation_id: int, to_agent_id: object) -> Conversation:
    """Give a conversation in the queue or being answered to another agent (offered, as a transfer is),
    or with `to_agent_id` None send it back to the queue."""
    require(supervisor)
    conversation = conversations.agent_conversation(conversation_id)
    if conversation.status not in ("open", "active"):
        raise ChatError(409, "wrong_state", "Only conversations in the queue or being answered can be reassigned.")
    previous = conversation.agent
    if to_agent_id is None:
        if previous is None:
            raise ChatError(409, "wrong_state", "This conversation is already in the queue.")
        routing.requeue(conversation, "agent", supervisor.id, let_go=True)
        db.session.commit()
        routing.dispatch()
        return conversation
    if not isinstance(to_agent_id, int) or isinstance(to_agent_id, bool):
        raise ChatError(400, "invalid_request", "agent_id must be an agent's id, or null for the queue.")
    target = db.session.get(Agent, to_agent_id)
    if target is None:
        raise not_found("agent")
    if target.id == conversation.agent_id:
        raise ChatError(409, "wrong_state", f"{target.name} already has this conversation.")
    if target.presence in ("offline", "inactive"):
        raise ChatError(409, "agent_unavailable", f"{target.name} is {target.presence}; choose someone who is in.")
    now = clock.now()
    table = Conversation.__table__
    # Compare-and-set: routing or the agent may move it at the same moment; then nothing is changed.
    moved = db.session.execute(
        update(table)
        .where(
            table.c.id == conversation.id,
            table.c.status == conversation.status,
            table.c.agent_id.is_(None) if previous is None else table.c.agent_id == previous.id,
        )
        .values(
            agent_id=target.id,
            status="active",
            updated_at=now,
            offer_expires_at=now + timedelta(seconds=conversation.workstream.accept_seconds),
            released_by_id=None,
        )
    ).rowcount
    if moved != 1:
        db.session.rollback()
        raise ChatError(409, "wrong_state", "This conversation changed meanwhile; look again.")
    from_status = conversation.status
    db.session.refresh(conversation)
    lifecycle.record(conversation, from_status, "active", "agent", supervisor.id)
    lifecycle.announce(conversation)
    lifecycle.notify(target.id, "assigned", conversation)
    if previous is not None:
        lifecycle.announce_agent(previous)
    lifecycle.announce_agent(target)
    db.session.commit()
    return conversation
