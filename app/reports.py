"""Reports for supervisors and admins: per day and per workstream or agent, from SQL aggregates.

One grouped query over the conversations started in the range (an index on created_at), with the
ratings joined by primary key and each conversation's first agent reply found by the (conversation_id,
seq) index: the cost grows with the conversations in the range, not with the whole history.
"""

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, case, extract, func, select

from . import supervision
from .errors import ChatError
from .extensions import db
from .models import Agent, Conversation, Message, Rating, Workstream

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


def query(since: date, until: date, by: str) -> Select:
    first_reply = (
        select(func.min(Message.created_at))
        .where(Message.conversation_id == Conversation.id, Message.sender_kind == "agent")
        .correlate(Conversation)
        .scalar_subquery()
    )
    day = func.date(Conversation.created_at)
    if by == "workstream":
        key, name, join = Workstream.id, Workstream.name, (Workstream, Workstream.id == Conversation.workstream_id)
    else:
        key, name, join = Agent.id, Agent.name, (Agent, Agent.id == Conversation.agent_id)
    scores = [func.sum(case((Rating.score == n, 1), else_=0)) for n in range(1, 6)]
    return (
        select(
            day.label("day"),
            key.label("key"),
            name.label("name"),
            func.count(Conversation.id),
            func.count(Conversation.ended_at),
            func.avg(_seconds(first_reply, Conversation.created_at)),
            func.avg(_seconds(Conversation.ended_at, Conversation.created_at)),
            func.count(Rating.score),
            func.avg(Rating.score),
            *scores,
        )
        .select_from(Conversation)
        .join(*join)
        .outerjoin(Rating, Rating.conversation_id == Conversation.id)
        .where(
            Conversation.created_at >= datetime.combine(since, datetime.min.time()),
            Conversation.created_at < datetime.combine(until + timedelta(days=1), datetime.min.time()),
        )
        .group_by(day, key, name)
        .order_by(day, name)
    )


def _day(raw: str | None, name: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ChatError(400, "invalid_request", f"{name} must be a date such as 2026-12-01.") from None


def daily(agent: Agent, args) -> list[Row]:
    """The report the query string asks for: since, until (dates, both included; the last 30 days by
    default) and by (workstream or agent)."""
    supervision.require(agent)
    today = date.today()
    until = _day(args.get("until"), "until", today)
    since = _day(args.get("since"), "since", until - timedelta(days=29))
    by = args.get("by", "workstream")
    if by not in GROUPINGS:
        raise ChatError(400, "invalid_request", "by must be workstream or agent.")
    if since > until or (until - since).days >= MAX_DAYS:
        raise ChatError(400, "invalid_request", f"since must be before until, at most {MAX_DAYS} days apart.")
    rows = []
    for found in db.session.execute(query(since, until, by)):
        day, key, name, total, ended, first, resolution, ratings, average, *scores = found
        rows.append(
            Row(
                day=str(day),
                key=str(key),
                name=name,
                conversations=total,
                ended=ended,
                first_response_seconds=round(float(first), 1) if first is not None else None,
                resolution_seconds=round(float(resolution), 1) if resolution is not None else None,
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
