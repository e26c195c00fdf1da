"""Work distribution: push and pick, acceptance, transfer, presence. Each step is one function that
validates, writes in one transaction and announces after commit (see lifecycle.py).

Correct with several server processes on one database: an assignment locks the agent's row, recounts
their capacity and claims the conversation with a compare-and-set, so no conversation gets two agents
and routing never fills an agent past capacity.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from . import automated_messages, clock, hours, lifecycle
from .capacity import Load, choose_agent, fits, loads
from .errors import ChatError, not_found
from .extensions import db
from .models import PRESENCES, Agent, Conversation, Workstream

MANUAL_PRESENCES = tuple(p for p in PRESENCES if p != "inactive")


def _calendar(workstream: Workstream) -> hours.Calendar:
    return hours.parse(json.loads(workstream.hours)) if workstream.hours else hours.ALWAYS_OPEN


def is_open(workstream: Workstream, now: datetime) -> bool:
    return hours.is_open(_calendar(workstream), now)


def is_holiday(workstream: Workstream, now: datetime) -> bool:
    return hours.is_holiday(_calendar(workstream), now)


def opens_at(workstream: Workstream, now: datetime) -> datetime | None:
    return hours.next_opening(_calendar(workstream), now)


def _lock_agent(agent_id: int) -> Agent | None:
    # FOR UPDATE serialises assignments to one agent across processes on PostgreSQL; SQLite's
    # BEGIN IMMEDIATE already serialises every writer.
    return db.session.scalar(select(Agent).where(Agent.id == agent_id).with_for_update())


def _claim(conversation_id: int, agent_id: int, now: datetime, offer_seconds: int | None) -> bool:
    """Compare-and-set: the conversation goes to this agent only if it is still open and unassigned."""
    table = Conversation.__table__
    claimed = db.session.execute(
        update(table)
        .where(table.c.id == conversation_id, table.c.status == "open", table.c.agent_id.is_(None))
        .values(
            agent_id=agent_id,
            status="active",
            updated_at=now,
            offer_expires_at=now + timedelta(seconds=offer_seconds) if offer_seconds else None,
            released_by_id=None,
        )
    ).rowcount
    return claimed == 1


def _assigned(conversation: Conversation, agent: Agent, actor_kind: str, actor_id: int | None, now: datetime) -> None:
    db.session.refresh(conversation)
    lifecycle.record(conversation, "open", "active", actor_kind, actor_id)
    agent.last_assigned_at = now
    if conversation.offer_expires_at is None:
        automated_messages.post(conversation, "agent_joined")
    lifecycle.announce(conversation)
    lifecycle.announce_agent(agent)


def accepted(conversation: Conversation) -> None:
    """The agent takes up an offer, by accepting or by answering (in the caller's transaction)."""
    conversation.offer_expires_at = None
    automated_messages.post(conversation, "agent_joined")
    lifecycle.announce(conversation)


def _offer(conversation: Conversation, agent_id: int, now: datetime) -> bool:
    """Push one conversation to one agent, rechecking presence and capacity under the agent's lock."""
    workstream = conversation.workstream
    agent = _lock_agent(agent_id)
    load = loads(now, [agent_id]).get(agent_id, Load())
    if (
        agent is None
        or agent.presence not in workstream.allowed_presences.split()
        or not fits(agent, load, workstream.capacity_cost)
        or not _claim(conversation.id, agent_id, now, workstream.accept_seconds)
    ):
        db.session.rollback()
        return False
    _assigned(conversation, agent, "system", None, now)
    lifecycle.notify(agent.id, "assigned", conversation)
    db.session.commit()
    return True


def dispatch(now: datetime | None = None) -> int:
    """Push the queue's open conversations, oldest first, to agents with room (but not to the agent who
    let one go); returns how many went.

    Runs when a conversation becomes open, an agent frees capacity or becomes available, and on every
    scheduler tick (which is how conversations waiting for operating hours start moving). Whoever is
    still queued afterwards hears where they now stand.
    """
    now = now or clock.now()
    assigned = _push(now)
    automated_messages.queue_updates(now)
    return assigned


def _push(now: datetime) -> int:
    queue = db.session.execute(
        select(Conversation.id, Conversation.released_by_id, Workstream)
        .join(Workstream, Conversation.workstream_id == Workstream.id)
        .where(Conversation.status == "open", Conversation.agent_id.is_(None), Workstream.distribution == "push")
        .order_by(Conversation.id)
    ).all()
    if not queue:
        return 0
    # Plain snapshots: every assignment commits, and ORM rows would reload after each commit.
    agents = [
        AgentSnapshot(a.id, a.presence, a.capacity, a.max_items, a.last_assigned_at)
        for a in db.session.scalars(select(Agent).where(Agent.presence.not_in(("offline", "inactive"))))
    ]
    workstreams = {w.id: WorkstreamSnapshot(w.allowed_presences, w.capacity_cost) for _, _, w in queue}
    open_now = {w.id: is_open(w, now) for _, _, w in queue}
    current = loads(now)
    assigned = 0
    for conversation_id, released_by, workstream in queue:
        candidates = [a for a in agents if a.id != released_by] if released_by else agents
        rules = workstreams[workstream.id]
        agent = open_now[workstream.id] and choose_agent(rules, candidates, current)
        if agent and _offer(db.session.get(Conversation, conversation_id), agent.id, now):
            load = current.setdefault(agent.id, Load())
            load.units += rules.capacity_cost
            load.items += 1
            agent.last_assigned_at = now
            assigned += 1
    return assigned


@dataclass
class AgentSnapshot:
    id: int
    presence: str
    capacity: int
    max_items: int | None
    last_assigned_at: datetime | None


@dataclass(frozen=True)
class WorkstreamSnapshot:
    allowed_presences: str
    capacity_cost: int


def take(agent: Agent, conversation_id: int) -> Conversation:
    """An agent picks an open conversation from the queue (pick mode, or any unassigned one)."""
    now = clock.now()
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise not_found()
    locked = _lock_agent(agent.id)
    if not fits(locked, loads(now, [agent.id]).get(agent.id, Load()), conversation.workstream.capacity_cost):
        db.session.rollback()
        raise ChatError(409, "over_capacity", "You have no free capacity for another conversation.")
    # Of two agents taking it at once, exactly one UPDATE matches.
    if not _claim(conversation.id, agent.id, now, None):
        db.session.rollback()
        raise ChatError(409, "wrong_state", "This conversation is no longer waiting in the queue.")
    _assigned(conversation, locked, "agent", agent.id, now)
    db.session.commit()
    automated_messages.queue_updates(now)
    return conversation


def accept(agent: Agent, conversation_id: int) -> Conversation:
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise not_found()
    if conversation.agent_id != agent.id or conversation.status != "active":
        raise ChatError(409, "wrong_state", "Only a conversation offered to you can be accepted.")
    if conversation.offer_expires_at is not None:
        accepted(conversation)
        db.session.commit()
    return conversation


def requeue(conversation: Conversation, actor_kind: str, actor_id: int | None, *, let_go: bool = False) -> Agent | None:
    """Take an active conversation off its agent and back to the queue (in the caller's transaction).
    `let_go`: the agent chose to, or a supervisor for them, so routing leaves them out for it."""
    previous = conversation.agent
    lifecycle.change_status(conversation, "open", actor_kind, actor_id)
    conversation.agent_id = None
    conversation.agent = None
    conversation.offer_expires_at = None
    conversation.released_by_id = previous.id if let_go and previous is not None else None
    lifecycle.announce(conversation)
    if previous is not None:
        lifecycle.announce_agent(previous)
    return previous


def transfer(agent: Agent, conversation_id: int, to_agent_id: object) -> Conversation:
    """Hand an active conversation to another agent (who is notified and must accept it) or, with
    `to_agent_id` None, back to the queue."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None:
        raise not_found()
    if conversation.agent_id != agent.id or conversation.status != "active":
        raise ChatError(409, "wrong_state", "Only your active conversations can be transferred.")
    if to_agent_id is None:
        requeue(conversation, "agent", agent.id, let_go=True)
        db.session.commit()
        dispatch()
        return conversation
    if not isinstance(to_agent_id, int) or isinstance(to_agent_id, bool) or to_agent_id == agent.id:
        raise ChatError(400, "invalid_request", "agent_id must be another agent's id, or null for the queue.")
    target = db.session.get(Agent, to_agent_id)
    if target is None:
        raise not_found("agent")
    if target.presence in ("offline", "inactive"):
        raise ChatError(409, "agent_unavailable", f"{target.name} is {target.presence}; choose someone who is in.")
    now = clock.now()
    lifecycle.record(conversation, "active", "active", "agent", agent.id)
    conversation.agent_id = target.id
    conversation.agent = target
    conversation.updated_at = now
    conversation.offer_expires_at = now + timedelta(seconds=conversation.workstream.accept_seconds)
    lifecycle.announce(conversation)
    lifecycle.notify(target.id, "assigned", conversation)
    lifecycle.announce_agent(agent)
    lifecycle.announce_agent(target)
    db.session.commit()
    return conversation


def set_presence(agent: Agent, presence: object) -> Agent:
    if presence not in MANUAL_PRESENCES:
        raise ChatError(400, "invalid_request", f"presence must be one of {', '.join(MANUAL_PRESENCES)}.")
    if agent.presence != presence:
        lifecycle.change_presence(agent, presence)
        db.session.commit()
        dispatch()
    return agent


def seen(agent_id: int) -> None:
    """A console of this agent's is alive (it connected, or pinged)."""
    db.session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=clock.now()))
    db.session.commit()
