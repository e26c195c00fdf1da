"""Capacity and the choice of agent for an open conversation: pure rules over rows already read.

Capacity is counted from the conversations themselves (never a counter that can drift): `active` costs
the workstream's units, `waiting` costs nothing, `wrap_up` costs as the workstream says.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from .extensions import db
from .models import Agent, Conversation, Workstream


@dataclass
class Load:
    units: int = 0
    items: int = 0


def holds_capacity(status: str, workstream: Workstream, ended_at: datetime | None, now: datetime) -> bool:
    if status == "active":
        return True
    if status != "wrap_up":
        return False
    rule = workstream.wrap_up_capacity
    if rule == "always":
        return True
    if rule == "never" or ended_at is None:
        return False
    try:
        return ended_at + timedelta(seconds=int(rule)) > now
    except OverflowError:
        # A value stored before settings had a maximum, past the end of the calendar: always, in effect.
        return True


def loads(now: datetime, agent_ids: list[int] | None = None) -> dict[int, Load]:
    """Each agent's used capacity, from their active and wrap-up conversations."""
    query = (
        select(Conversation.agent_id, Conversation.status, Conversation.ended_at, Workstream)
        .join(Workstream, Conversation.workstream_id == Workstream.id)
        .where(Conversation.status.in_(("active", "wrap_up")), Conversation.agent_id.is_not(None))
    )
    if agent_ids is not None:
        query = query.where(Conversation.agent_id.in_(agent_ids))
    result: dict[int, Load] = {}
    for agent_id, status, ended_at, workstream in db.session.execute(query):
        if holds_capacity(status, workstream, ended_at, now):
            load = result.setdefault(agent_id, Load())
            load.units += workstream.capacity_cost
            load.items += 1
    return result


def fits(agent: Agent, load: Load, cost: int) -> bool:
    if agent.max_items is not None and load.items >= agent.max_items:
        return False
    return agent.capacity - load.units >= cost


def choose_agent(workstream: Workstream, agents: list[Agent], current: dict[int, Load]) -> Agent | None:
    """Of the agents in an allowed presence with room for this workstream's cost: the most free capacity
    first, then the one idle longest."""
    allowed = set(workstream.allowed_presences.split())
    eligible = [
        a for a in agents if a.presence in allowed and fits(a, current.get(a.id, Load()), workstream.capacity_cost)
    ]
    if not eligible:
        return None
    return min(
        eligible,
        key=lambda a: (-(a.capacity - current.get(a.id, Load()).units), a.last_assigned_at or datetime.min, a.id),
    )


def capacity_view(agent: Agent, load: Load) -> dict:
    """What the console's capacity meter shows; over 100 % when affinity brought work back."""
    return {
        "capacity": agent.capacity,
        "used": load.units,
        "percent": round(100 * load.units / agent.capacity) if agent.capacity else 0,
        "max_items": agent.max_items,
        "items": load.items,
    }
