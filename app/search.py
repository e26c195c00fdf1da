"""Search across conversations, with the database's own full-text engine behind one function.

Message bodies are indexed by SQLite FTS5 (the `message_fts` table, kept by triggers) or by a PostgreSQL
GIN index on `to_tsvector('simple', body)` (the 'simple' configuration: no stemming for one language,
so Finnish and English are found alike). Both are made by the migrations, outside the models.
"""

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, column, func, literal_column, or_, select, table

from . import checked
from .errors import ChatError
from .extensions import db
from .models import STATUSES, Conversation, ConversationLabel, Customer, Message

# The highlight markers the engines put around a match; the API turns them into segments, so that a
# client never parses markup out of a customer's text.
START, STOP = "\x02", "\x03"
MAX_QUERY_CHARS = 200
MAX_RESULTS = 50
# Schema objects the search index owns, which the models do not describe.
SQLITE_OBJECTS = ("message_fts", "message_fts_data", "message_fts_idx", "message_fts_docsize", "message_fts_config")
POSTGRESQL_INDEX = "ix_message_body_fts"


def outside_models(name: str | None, type_: str) -> bool:
    return (type_ == "table" and name in SQLITE_OBJECTS) or (type_ == "index" and name == POSTGRESQL_INDEX)


_FTS = table("message_fts", column("rowid"))


@dataclass
class Filters:
    text: str = ""
    customer: str = ""
    status: str | None = None
    workstream_id: str | None = None
    label_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Hit:
    conversation: Conversation
    message: Message | None
    snippet: str | None


def _words(raw: str) -> list[str]:
    return re.findall(r"[^\W_]+", raw)


def _fts5_query(raw: str) -> str:
    # Every word as a quoted prefix term: the user's text is never FTS5 syntax.
    return " ".join(f'"{word}"*' for word in _words(raw))


def _tsquery(raw: str) -> str:
    # The same meaning as the FTS5 query: every word, as a prefix. Words are letters and digits only,
    # so nothing in them is tsquery syntax.
    return " & ".join(f"{word}:*" for word in _words(raw))


def _conversation_filters(query: Select, filters: Filters) -> Select:
    if filters.status:
        query = query.where(Conversation.status == filters.status)
    if filters.workstream_id:
        query = query.where(Conversation.workstream_id == filters.workstream_id)
    if filters.label_id is not None:
        query = query.join(
            ConversationLabel,
            (ConversationLabel.conversation_id == Conversation.id) & (ConversationLabel.label_id == filters.label_id),
        )
    if filters.since:
        query = query.where(Conversation.created_at >= filters.since)
    if filters.until:
        query = query.where(Conversation.created_at < filters.until)
    if filters.customer:
        pattern = "%" + filters.customer.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.join(Customer, Customer.id == Conversation.customer_id).where(
            or_(Customer.display_name.ilike(pattern, escape="\\"), Customer.sub.ilike(pattern, escape="\\"))
        )
    return query


def message_query(filters: Filters, limit: int) -> Select:
    """(message id, conversation id, snippet) of the newest matching messages, driven by the full-text
    index: the message table is only read by primary key for the rows the index found."""
    if db.engine.dialect.name == "sqlite":
        query = (
            select(
                Message.id,
                Message.conversation_id,
                literal_column(f"snippet(message_fts, 0, '{START}', '{STOP}', '…', 16)").label("snippet"),
            )
            .select_from(_FTS)
            .join(Message, Message.id == _FTS.c.rowid)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(literal_column("message_fts").op("MATCH")(_fts5_query(filters.text)))
            # FTS5 returns rowids in order itself: the newest first without sorting the matches.
            .order_by(_FTS.c.rowid.desc())
        )
    else:
        # Written out, not bound: the expression must be the very one the index was built on.
        simple = literal_column("'simple'::regconfig")
        tsquery = func.to_tsquery(simple, _tsquery(filters.text))
        vector = func.to_tsvector(simple, Message.body)
        headline = func.ts_headline(
            simple, Message.body, tsquery, f"StartSel={START}, StopSel={STOP}, MaxWords=24, MinWords=8"
        )
        query = (
            select(Message.id, Message.conversation_id, headline.label("snippet"))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(vector.op("@@")(tsquery))
            # `+ 0`: ordering by the bare primary key would tempt the planner into walking it backwards
            # and testing every message; this keeps the GIN index in charge and sorts only the matches.
            .order_by((Message.id + 0).desc())
        )
    return _conversation_filters(query.where(Message.sender_kind != "system"), filters).limit(limit)


def conversation_query(filters: Filters, limit: int) -> Select:
    """Without words to look for: the newest conversations that pass the filters."""
    return _conversation_filters(select(Conversation.id), filters).order_by(Conversation.id.desc()).limit(limit)


def check(filters: Filters) -> Filters:
    if len(filters.text) > MAX_QUERY_CHARS or len(filters.customer) > MAX_QUERY_CHARS:
        raise ChatError(400, "invalid_request", f"Search for at most {MAX_QUERY_CHARS} characters.")
    if filters.status is not None and filters.status not in STATUSES:
        raise ChatError(400, "invalid_request", f"status must be one of {', '.join(STATUSES)}.")
    if filters.text.strip() and not _words(filters.text):
        raise ChatError(400, "invalid_request", "Search for at least one word.")
    return filters


def search(filters: Filters, limit: int = 20) -> list[Hit]:
    """Conversations matching the filters, newest first; with text, each with its newest matching
    message and a snippet of it (matches between START and STOP)."""
    check(filters)
    if not _words(filters.text):
        ids = list(db.session.scalars(conversation_query(filters, limit)))
        found = {c.id: c for c in db.session.scalars(select(Conversation).where(Conversation.id.in_(ids)))}
        return [Hit(found[i], None, None) for i in ids]
    # A conversation with many matching messages shows once, with its newest.
    rows = db.session.execute(message_query(filters, limit * 5)).all()
    first: dict[int, tuple[int, str]] = {}
    for message_id, conversation_id, snippet in rows:
        if conversation_id not in first and len(first) < limit:
            first[conversation_id] = (message_id, snippet)
    found = {c.id: c for c in db.session.scalars(select(Conversation).where(Conversation.id.in_(first)))}
    messages = {
        m.id: m
        for m in db.session.scalars(
            select(Message).where(Message.id.in_([message_id for message_id, _ in first.values()]))
        )
    }
    return [Hit(found[c], messages[m], snippet) for c, (m, snippet) in first.items()]


def segments(snippet: str) -> list[dict]:
    """A snippet as [{"text", "match"}], for clients to build without parsing."""
    parts = []
    for i, piece in enumerate(re.split(f"[{START}{STOP}]", snippet)):
        if piece:
            parts.append({"text": piece, "match": i % 2 == 1})
    return parts


def _date(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ChatError(400, "invalid_request", f"{name} must be a date such as 2026-12-01.") from None


def filters_from(args) -> Filters:
    """The search's query string (q, customer, status, workstream, label, since, until: dates, both
    included)."""
    since, until = _date(args.get("since"), "since"), _date(args.get("until"), "until")
    label = checked.query_integer(args.get("label") or None, "label", low=1)
    return Filters(
        text=args.get("q", ""),
        customer=args.get("customer", "").strip(),
        status=args.get("status") or None,
        workstream_id=args.get("workstream") or None,
        label_id=label,
        since=datetime.combine(since, datetime.min.time()) if since else None,
        until=datetime.combine(until + timedelta(days=1), datetime.min.time()) if until else None,
    )
