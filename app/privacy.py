"""A customer's data under their control: export it, erase it, and keep conversations only as long as
their workstream's retention says.

What holds a customer's data is listed here, in one place: a table that stores a conversation's data
adds its deleter to CONVERSATION_DELETERS, one that stores a customer's to CUSTOMER_DELETERS. Erasure
and retention run the same deleters; tests/test_privacy.py fails for a table or column nobody has
placed, so a new one cannot be forgotten silently.
"""

import io
import json
import zipfile
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select

from . import attachments, audit, clock, conversations, events, lifecycle, read_state
from .clock import iso
from .errors import ChatError, not_found
from .extensions import db
from .models import (
    Agent,
    Attachment,
    AuthSetting,
    Conversation,
    ConversationEvent,
    ConversationLabel,
    Customer,
    EmailOptOut,
    Message,
    Note,
    OutboxEmail,
    OutboxWebhook,
    Rating,
    Workstream,
)

# Conversations deleted per transaction by retention: no lock is held for long.
RETENTION_BATCH = 100
# Retention is about days: the scheduler looks this often, not at every tick.
RETENTION_EVERY = timedelta(minutes=5)
_next_retention: datetime | None = None
ERASED_EVENT = {"type": "erased"}


def _delete_where(column) -> Callable[[list[int]], None]:
    def deleter(ids: list[int]) -> None:
        if ids:
            db.session.execute(delete(column.table).where(column.in_(ids)))

    return deleter


# Each takes conversation ids; the conversation rows themselves go last.
CONVERSATION_DELETERS: list[Callable[[list[int]], None]] = [
    attachments.delete_conversations_files,
    _delete_where(Message.__table__.c.conversation_id),
    # Agents' notes and labels are about the customer; a rating is the customer's own words.
    _delete_where(Note.__table__.c.conversation_id),
    _delete_where(ConversationLabel.__table__.c.conversation_id),
    _delete_where(Rating.__table__.c.conversation_id),
    _delete_where(ConversationEvent.__table__.c.conversation_id),
    # An email or a webhook carries the conversation's messages.
    _delete_where(OutboxEmail.__table__.c.conversation_id),
    _delete_where(OutboxWebhook.__table__.c.conversation_id),
    _delete_where(Conversation.__table__.c.id),
]
# Each takes customer ids, after their conversations are gone; the customer rows go last.
CUSTOMER_DELETERS: list[Callable[[list[int]], None]] = [
    attachments.delete_customers_files,
    _delete_where(EmailOptOut.__table__.c.customer_id),
    _delete_where(Customer.__table__.c.id),
]


def delete_conversations(ids: list[int]) -> None:
    for deleter in CONVERSATION_DELETERS:
        deleter(ids)


# Finding a customer -----------------------------------------------------------------------------------


def find(auth_setting_id: object = None, sub: object = None, email: object = None) -> list[Customer]:
    """By the authentication setting and the token's `sub` (one customer), or by email (one per setting
    that has seen that address)."""
    if email is not None:
        if not isinstance(email, str) or "@" not in email or sub is not None:
            raise ChatError(400, "invalid_request", "Give an email address, or an auth_setting_id and a sub.")
        return list(db.session.scalars(select(Customer).where(Customer.email == email.strip()).order_by(Customer.id)))
    if not isinstance(sub, str) or not sub:
        raise ChatError(400, "invalid_request", "Give an email address, or an auth_setting_id and a sub.")
    if not isinstance(auth_setting_id, int) or isinstance(auth_setting_id, bool):
        raise ChatError(400, "invalid_request", "auth_setting_id must be an authentication setting's id.")
    if db.session.get(AuthSetting, auth_setting_id) is None:
        raise not_found("authentication setting")
    found = db.session.scalar(select(Customer).where(Customer.auth_setting_id == auth_setting_id, Customer.sub == sub))
    return [found] if found else []


def get(customer_id: int) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise not_found("customer")
    return customer


def describe(customer: Customer) -> dict:
    return {
        "id": customer.id,
        "auth_setting_id": customer.auth_setting_id,
        "sub": customer.sub,
        "display_name": customer.display_name,
        "email": customer.email,
        "created_at": iso(customer.created_at),
    }


def _audit(action: str, actor: Agent | None, actor_name: str | None = None) -> None:
    """`actor` is the admin; None is the CLI, or the API key `actor_name` names. The entry says that it
    happened and by whom, never whose data it was."""
    audit.record_anonymous(action, "customer", *_actor(actor, actor_name))


def _actor(actor: Agent | None, actor_name: str | None) -> tuple[str, int | None, str]:
    if actor is not None:
        return "agent", actor.id, actor.email
    return ("api", None, actor_name) if actor_name else ("cli", None, "command line")


def holdings(customer: Customer) -> dict:
    """What is stored of the customer, counted: what an erasure would delete."""
    mine = _conversations_of(customer)
    ids = [c.id for c in mine]
    files = db.session.scalar(
        select(func.count())
        .select_from(Attachment)
        .where(or_(Attachment.conversation_id.in_(ids), Attachment.customer_id == customer.id))
    )
    return {
        "conversations": len(mine),
        "current": sum(1 for c in mine if not c.ended),
        "messages": sum(c.last_seq for c in mine),
        "files": files,
        "workstreams": sorted({c.workstream.name for c in mine}),
    }


# Export ---------------------------------------------------------------------------------------------


def _conversations_of(customer: Customer) -> list[Conversation]:
    return list(
        db.session.scalars(
            select(Conversation).where(Conversation.customer_id == customer.id).order_by(Conversation.id)
        )
    )


def _export_conversation(conversation: Conversation) -> dict:
    messages = db.session.scalars(
        select(Message).where(Message.conversation_id == conversation.id).order_by(Message.seq)
    )
    history = db.session.scalars(
        select(ConversationEvent)
        .where(ConversationEvent.conversation_id == conversation.id)
        .order_by(ConversationEvent.id)
    )
    return {
        "id": conversation.id,
        "workstream": {"id": conversation.workstream_id, "name": conversation.workstream.name},
        "status": conversation.status,
        "agent_name": conversation.agent.name if conversation.agent else None,
        "started_at": iso(conversation.created_at),
        "ended_at": iso(conversation.ended_at),
        "context": json.loads(conversation.context) if conversation.context else {},
        "locale": conversation.locale,
        "read": read_state.view(conversation),
        "messages": [
            {
                "seq": m.seq,
                "sender": m.sender_kind,
                "sender_name": m.sender_name,
                "body": m.body,
                "created_at": iso(m.created_at),
            }
            for m in messages
        ],
        "events": [
            {"from_status": e.from_status, "to_status": e.to_status, "by": e.actor_kind, "at": iso(e.created_at)}
            for e in history
        ],
    }


def export(customer: Customer, actor: Agent | None) -> bytes:
    """A ZIP: `customer.json` (everything stored about them, as data) and one readable transcript per
    conversation."""
    found = _conversations_of(customer)
    opt_outs = db.session.scalars(select(EmailOptOut).where(EmailOptOut.customer_id == customer.id))
    data = {
        "exported_at": iso(clock.now()),
        "customer": describe(customer),
        "email_opt_outs": [{"workstream_id": o.workstream_id, "since": iso(o.created_at)} for o in opt_outs],
        "conversations": [_export_conversation(c) for c in found],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customer.json", json.dumps(data, indent=2, ensure_ascii=False))
        for conversation in found:
            archive.writestr(f"transcripts/conversation-{conversation.id}.txt", conversations.transcript(conversation))
    _audit("customer_exported", actor)
    db.session.commit()
    return buffer.getvalue()


# Erasure --------------------------------------------------------------------------------------------


def erase(customer: Customer, actor: Agent | None, actor_name: str | None = None) -> dict:
    """Delete the customer and everything of theirs in one transaction, record that an erasure happened
    and by whom (not whose), and close their open widgets. Returns what was deleted, by kind."""
    customer_id = customer.id
    mine = _conversations_of(customer)
    ids = [c.id for c in mine]
    agents = {c.agent_id for c in mine if c.agent_id is not None}
    counts = {
        "conversations": len(ids),
        "messages": sum(c.last_seq for c in mine),
    }
    for conversation in mine:
        db.session.expunge(conversation)
    db.session.expunge(customer)
    delete_conversations(ids)
    for deleter in CUSTOMER_DELETERS:
        deleter([customer_id])
    _audit("customer_erased", actor, actor_name)
    # Published after commit: every process closes that customer's sockets, on every workstream.
    channels = [events.customer_channel(customer_id, w) for w in db.session.scalars(select(Workstream.id))]
    events.emit(db.session, channels, ERASED_EVENT)
    for agent_id in agents:
        if (agent := db.session.get(Agent, agent_id)) is not None:
            lifecycle.announce_agent(agent)
    db.session.commit()
    return counts


# Retention ------------------------------------------------------------------------------------------


def apply_retention(now: datetime) -> int:
    """Delete conversations closed longer ago than their workstream's retention, a batch per transaction;
    returns how many were deleted. Customers left without any conversation stay: they may come back."""
    deleted = 0
    for workstream in db.session.scalars(select(Workstream).where(Workstream.retention_days.is_not(None))).all():
        cutoff = now - timedelta(days=workstream.retention_days)
        while True:
            ids = list(
                db.session.scalars(
                    select(Conversation.id)
                    .where(
                        Conversation.workstream_id == workstream.id,
                        Conversation.status == "closed",
                        Conversation.ended_at < cutoff,
                    )
                    .order_by(Conversation.id)
                    .limit(RETENTION_BATCH)
                )
            )
            if not ids:
                break
            delete_conversations(ids)
            db.session.commit()
            deleted += len(ids)
    db.session.commit()
    return deleted


def retention_tick(now: datetime) -> int:
    global _next_retention
    if _next_retention is not None and now < _next_retention:
        return 0
    _next_retention = now + RETENTION_EVERY
    return apply_retention(now)
