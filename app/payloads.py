"""The JSON shapes of docs/protocol.md, built in one place for HTTP and websocket alike."""

import json
from typing import TYPE_CHECKING

from sqlalchemy import select

from . import attachments as attachment_files
from . import csat, notifications, read_state
from .clock import iso
from .extensions import db
from .models import Agent, Attachment, Conversation, ConversationLabel, Label, Message, Workstream

if TYPE_CHECKING:
    from .posting import Posted


def message(m: "Message | Posted", attachments: list[Attachment] | None = None) -> dict:
    """`attachments`, when the caller has them at hand (a page loads them in one query), saves a lookup."""
    if attachments is None:
        attachments = attachment_files.of_messages([m]).get(m.id, []) if m.attachment_count else []
    return {
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "sender": m.sender_kind,
        "sender_name": m.sender_name,
        "body": m.body,
        "client_id": m.client_id,
        "created_at": iso(m.created_at),
        "attachments": [attachment_files.describe(a) for a in attachments],
    }


def messages(page: list[Message]) -> list[dict]:
    found = attachment_files.of_messages(page)
    return [message(m, found.get(m.id, [])) for m in page]


def widget_workstream(w: Workstream) -> dict:
    return {
        "id": w.id,
        "name": w.name,
        "mode": w.mode,
        "customer_can_end": w.mode == "live",
        "hide_when_closed": w.hide_when_closed,
    }


def widget_conversation(c: Conversation) -> dict:
    rating = csat.of(c)
    return {
        "id": c.id,
        "status": c.status,
        "ended": c.ended,
        # Who answers: the agent, or while the conversation is with it, the workstream's bot.
        "agent_name": c.agent.name if c.agent else (c.workstream.bot_name if c.status == "bot" else None),
        "last_seq": c.last_seq,
        # The highest seq the customer has been shown on any device (read_state.py).
        "read_seq": c.customer_read_seq or 0,
        "started_at": iso(c.created_at),
        "ended_at": iso(c.ended_at),
        "rating": csat.payload(rating),
        "rating_wanted": csat.wanted(c, rating),
    }


def labels_of(conversation_id: int) -> list[Label]:
    return list(
        db.session.scalars(
            select(Label)
            .join(ConversationLabel, ConversationLabel.label_id == Label.id)
            .where(ConversationLabel.conversation_id == conversation_id)
            .order_by(Label.name)
        )
    )


def summary(c: Conversation, last: Message | None = None) -> dict:
    if last is None and c.last_seq:
        # The preview shows what a person wrote, not the automated messages after it.
        last = db.session.scalar(
            select(Message)
            .where(Message.conversation_id == c.id, Message.sender_kind != "system")
            .order_by(Message.seq.desc())
            .limit(1)
        )
    return {
        **widget_conversation(c),
        "workstream": {"id": c.workstream.id, "name": c.workstream.name, "mode": c.workstream.mode},
        "customer": {
            "id": c.customer.id,
            "sub": c.customer.sub,
            "display_name": c.customer.label(),
            "authenticated": c.customer.auth_setting_id is not None,
        },
        "context": json.loads(c.context) if c.context else {},
        "locale": c.locale,
        "offer_expires_at": iso(c.offer_expires_at),
        "agent": {"id": c.agent.id, "name": c.agent.name} if c.agent else None,
        "last_message": message(last) if last else None,
        "labels": [{"id": label.id, "name": label.name, "colour": label.colour} for label in labels_of(c.id)],
        "updated_at": iso(c.updated_at),
        "customer_read": read_state.view(c),
        "email": notifications.view(c),
    }


def agent(a: Agent) -> dict:
    return {
        "id": a.id,
        "name": a.name,
        "presence": a.presence,
        "presence_changed_at": iso(a.presence_changed_at),
        "disabled": a.disabled_at is not None,
    }
