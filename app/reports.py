"""Reports for supervisors and admins: per day and per workstream or agent, from SQL aggregates.

One grouped query over the conversations started in the range (an index on created_at), with the
ratings joined by primary key, each conversation's first agent reply found by the (conversation_id,
seq) index, and its first assignment and time parked by the conversation_id index of its status
events: the cost grows with the conversations in the range, not with the whole history.
"""

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, case, extract, func, or_, select

from . import clock, supervision
from .errors import ChatError
from .extensions import db
from .models import Agent, Conversation, ConversationEvent, Message, Rating, Workstream

MAX_DAYS = 366
GROUPINGS = ("workstream", "agent")


@dataclass
class Row:
    day: str
    key: str
    name: str
    conversations: int
    ended: int
    first_response_seconds: float | None
    resolution_seconds: float | None
    queue_wait_seconds: float | None
    parked: int
    parked_seconds: float | None
    ratings: int
    csat_average: float | None
    csat_1: int
    csat_2: int
    csat_3: int
    csat_4: int
    csat_5: int


def _seconds(later, earlier):
    if db.engine.dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return extract("epoch", later - earlier)


def _first_assignment():
    """When the conversation first went from the queue to an agent: its first such event (not a MIN of
    created_at, which SQLite would look for along the status events' (to_status, created_at) index)."""
    return (
        select(ConversationEvent.created_at)
        .where(
            ConversationEvent.conversation_id == Conversation.id,
            ConversationEvent.from_status == "open",
            ConversationEvent.to_status == "active",
        )
        .order_by(ConversationEvent.id)
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )


def _parked(now: datetime):
    """Seconds the conversation has spent in `waiting`, counting a stay that goes on until `now`; NULL
    when it never waited. Each stay is an entering event and the leaving one after it, so the total is
    the leaving times less the entering times, plus `now` for a stay not left yet (all as seconds from
    the conversation's start, to keep the numbers small)."""
    entering, leaving = ConversationEvent.to_status == "waiting", ConversationEvent.from_status == "waiting"
    at = _seconds(ConversationEvent.created_at, Conversation.created_at)
    open_stays = func.sum(case((entering, 1), else_=0)) - func.sum(case((leaving, 1), else_=0))
    return (
        select(
            func.sum(case((leaving, at), else_=0))
            - func.sum(case((entering, at), else_=0))
            + open_stays * _seconds(now, Conversation.created_at)
        )
        .where(ConversationEvent.conversation_id == Conversation.id, or_(entering, leaving))
        .correlate(Conversation)
        .scalar_subquery()
    )


def query(since: date, until: date, by: str, now: datetime) -> Select:
    first_reply = (
        select(func.min(Message.created_at))
        .where(Message.conversation_id == Conversation.id, Message.sender_kind == "agent")
        .correlate(Conversation)
        .scalar_subquery()
    )
    if by == "workstream":
        key, name, join = Workstream.id, Workstream.name, (Workstream, Workstream.id == Conversation.workstream_id)
    else:
        key, name, join = Agent.id, Agent.name, (Agent, Agent.id == Conversation.agent_id)
    # One row per conversation first, materialized so that each figure is looked up once (inlined, the
    # databases would look the time parked up for its count and again for its average).
    each = (
        select(
            func.date(Conversation.created_at).label("day"),
            key.label("key"),
            name.label("name"),
            Conversation.id,
            Conversation.ended_at,
            _seconds(first_reply, Conversation.created_at).label("first_response"),
            _seconds(Conversation.ended_at, Conversation.created_at).label("resolution"),
            _seconds(_first_assignment(), Conversation.created_at).label("queue_wait"),
            _parked(now).label("parked"),
            Rating.score,
        )
        .select_from(Conversation)
        .join(*join)
        .outerjoin(Rating, Rating.conversation_id == Conversation.id)
        .where(
            Conversation.created_at >= datetime.combine(since, datetime.min.time()),
            Conversation.created_at < datetime.combine(until + timedelta(days=1), datetime.min.time()),
        )
        .cte("each_conversation")
        .prefix_with("MATERIALIZED")
    )
    scores = [func.sum(case((each.c.score == n, 1), else_=0)) for n in range(1, 6)]
    return (
        select(
            each.c.day,
            each.c.key,
            each.c.name,
            func.count(each.c.id),
            func.count(each.c.ended_at),
            func.avg(each.c.first_response),
            func.avg(each.c.resolution),
            func.avg(each.c.queue_wait),
            func.count(each.c.parked),
            func.avg(each.c.parked),
            func.count(each.c.score),
            func.avg(each.c.score),
            *scores,
        )
        .group_by(each.c.day, each.c.key, each.c.name)
        .order_by(each.c.day, each.c.name)
    )


def _day(raw: str | None, name: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ChatError(400, "invalid_request", f"{name} must be a date such as 2026-12-01.") from None


def _rounded(seconds) -> float | None:
    return round(float(seconds), 1) if seconds is not None else None


def daily(agent: Agent, args) -> list[Row]:
    """The report the query string asks for: since, until (dates, both included; the last 30 days by
    default) and by (workstream or agent)."""
    supervision.require(agent)
    today = clock.now().date()
    until = _day(args.get("until"), "until", today)
    since = _day(args.get("since"), "since", until - timedelta(days=29))
    by = args.get("by", "workstream")
    if by not in GROUPINGS:
        raise ChatError(400, "invalid_request", "by must be workstream or agent.")
    if since > until or (until - since).days >= MAX_DAYS:
        raise ChatError(400, "invalid_request", f"since must be before until, at most {MAX_DAYS} days apart.")
    rows = []
    for found in db.session.execute(query(since, until, by, clock.now())):
        day, key, name, total, ended, first, resolution, queue_wait, parked, parked_time, ratings, average, *scores = (
            found
        )
        rows.append(
            Row(
                day=str(day),
                key=str(key),
                name=name,
                conversations=total,
                ended=ended,
                first_response_seconds=_rounded(first),
                resolution_seconds=_rounded(resolution),
                queue_wait_seconds=_rounded(queue_wait),
                parked=parked,
                parked_seconds=_rounded(parked_time),
                ratings=ratings,
                csat_average=round(float(average), 2) if average is not None else None,
                **{f"csat_{n}": int(count or 0) for n, count in zip(range(1, 6), scores, strict=True)},
            )
        )
    return rows


def as_csv(rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(Row.__dataclass_fields__))
    writer.writeheader()
    for row in rows:
        # A name starting with = + - @ would be a formula in a spreadsheet.
        values = asdict(row)
        if values["name"] and values["name"][0] in "=+-@":
            values["name"] = "'" + values["name"]
        writer.writerow(values)
    return out.getvalue()


def as_dicts(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows]
