"""What a console shows beside the open conversation: the agent's lists, the team and the agent's own
capacity. The HTTP API answers each part; the console's socket sends all of them in one `snapshot` right
after it subscribes (docs/protocol.md). Both read them here, from a constant number of queries however
long the lists are."""

import json

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import capacity, clock, payloads
from ..extensions import db
from ..models import ENDED_STATUSES, Agent, Conversation
from ..realtime import MAX_FRAME_BYTES

RECENT = 20
LISTS = ("mine", "waiting", "queue", "recent")
# Joined into the list queries: loaded with the conversations, the summaries need no lookup of their own.
_RELATED = (
    joinedload(Conversation.workstream),
    joinedload(Conversation.customer),
    joinedload(Conversation.agent),
)


def lists(agent: Agent) -> dict:
    """mine (open or active, assigned to me), waiting (mine, parked), the queue's first conversations
    (open and unassigned, oldest first) with `queue_rest` ([id, version] of every one after them), and
    my last ended ones. Summaries carry `version`: a client keeps the highest it has seen of each."""
    window = current_app.config["CONSOLE_QUEUE_WINDOW"]
    current = db.session.scalars(
        select(Conversation)
        .where(Conversation.agent_id == agent.id, Conversation.status.in_(("open", "active", "waiting")))
        .options(*_RELATED)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
    ).all()
    queue = db.session.scalars(
        select(Conversation)
        .where(Conversation.status == "open", Conversation.agent_id.is_(None))
        .options(*_RELATED)
        .order_by(Conversation.id)
        .limit(window)
    ).all()
    # Asked even when the window is not full: the queue may have grown since it was read.
    rest = db.session.execute(
        select(Conversation.id, Conversation.version)
        .where(
            Conversation.status == "open",
            Conversation.agent_id.is_(None),
            Conversation.id > (queue[-1].id if queue else 0),
        )
        .order_by(Conversation.id)
    ).all()
    recent = db.session.scalars(recent_query(agent.id)).all()
    everything = [*current, *queue, *recent]
    summaries = payloads.summaries(everything)
    found = {
        "mine": [s for c, s in zip(current, summaries, strict=False) if c.status != "waiting"],
        "waiting": [s for c, s in zip(current, summaries, strict=False) if c.status == "waiting"],
        "queue": summaries[len(current) : len(current) + len(queue)],
        "recent": summaries[len(current) + len(queue) :],
    }
    return {
        **found,
        "queue_rest": [[conversation_id, version] for conversation_id, version in rest],
        "limits": {"queue": window, "recent": RECENT},
    }


def recent_query(agent_id: int):
    """The agent's last ended conversations: a backward range scan of (agent_id, ended_at, id)."""
    return (
        select(Conversation)
        .where(Conversation.agent_id == agent_id, Conversation.status.in_(ENDED_STATUSES))
        .options(*_RELATED)
        .order_by(Conversation.ended_at.desc(), Conversation.id.desc())
        .limit(RECENT)
    )


def me(agent: Agent) -> dict:
    load = capacity.loads(clock.now(), [agent.id]).get(agent.id, capacity.Load())
    return {
        "agent": {
            **payloads.agent(agent),
            "email": agent.email,
            "role": agent.role,
            "notify_email": agent.notify_email,
        },
        "capacity": capacity.capacity_view(agent, load),
    }


def team() -> list[dict]:
    """Everyone who can work, by name: for the team list and the transfer menu."""
    return [
        payloads.agent(a)
        for a in db.session.scalars(select(Agent).where(Agent.disabled_at.is_(None)).order_by(Agent.name, Agent.id))
    ]


def snapshot(agent: Agent) -> dict:
    return {**me(agent), "agents": team(), **lists(agent)}


def frames(state: dict) -> list[str]:
    """The snapshot as `snapshot` frames of at most MAX_FRAME_BYTES: the first carries `agent`,
    `capacity` and `limits`; the lists, `queue_rest` and `agents` are split across the parts, which a
    client joins until `more` is false."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    keys = ("agents", *LISTS, "queue_rest")
    first = dumps({"type": "snapshot", **{key: state[key] for key in ("agent", "capacity", "limits")}})
    # Every part ends with each key's brackets and `more`.
    tail = len(',"more":false}') + sum(len(f',"{key}":[]') for key in keys)
    parts: list[tuple[str, dict[str, list[str]]]] = [(first[:-1], {key: [] for key in keys})]
    size = len(parts[-1][0]) + tail
    for key in keys:
        for item in map(dumps, state[key]):
            if size + len(item) + 1 > MAX_FRAME_BYTES and any(parts[-1][1].values()):
                parts.append(('{"type":"snapshot"', {k: [] for k in keys}))
                size = len(parts[-1][0]) + tail
            parts[-1][1][key].append(item)
            size += len(item) + 1
    return [
        head
        + "".join(f',"{key}":[' + ",".join(items) + "]" for key, items in by_key.items())
        + (',"more":true}' if i < len(parts) - 1 else ',"more":false}')
        for i, (head, by_key) in enumerate(parts)
    ]
