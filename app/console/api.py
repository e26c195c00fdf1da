"""The console's JSON API (docs/protocol.md). Routes stay thin: the lifecycle lives in conversations."""

from flask import jsonify
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import conversations, payloads
from ..api import history_page, json_body
from ..extensions import db
from ..models import CURRENT_STATUSES, ENDED_STATUSES, Conversation
from . import bp

RECENT = 20
PAGE = 50


@bp.get("/api/me")
@login_required
def me():
    agent = current_user
    return jsonify(
        {
            "agent": {
                "id": agent.id,
                "email": agent.email,
                "name": agent.name,
                "role": agent.role,
                "presence": agent.presence,
            }
        }
    )


def _summaries(query) -> list[dict]:
    return [payloads.summary(c) for c in db.session.scalars(query)]


@bp.get("/api/conversations")
@login_required
def lists():
    mine = (
        select(Conversation)
        .where(Conversation.agent_id == current_user.id, Conversation.status.in_(CURRENT_STATUSES))
        .order_by(Conversation.updated_at.desc())
    )
    queue = (
        select(Conversation)
        .where(Conversation.status == "open", Conversation.agent_id.is_(None))
        .order_by(Conversation.id)
    )
    recent = (
        select(Conversation)
        .where(Conversation.agent_id == current_user.id, Conversation.status.in_(ENDED_STATUSES))
        .order_by(Conversation.ended_at.desc())
        .limit(RECENT)
    )
    return jsonify({"mine": _summaries(mine), "queue": _summaries(queue), "recent": _summaries(recent)})


@bp.get("/api/conversations/<int:conversation_id>")
@login_required
def conversation(conversation_id: int):
    found = conversations.agent_conversation(conversation_id)
    page = conversations.messages_page(found.id, before=found.last_seq + 1, limit=PAGE)
    history = db.session.scalars(
        select(Conversation)
        .where(Conversation.customer_id == found.customer_id, Conversation.id != found.id)
        .order_by(Conversation.id.desc())
        .limit(PAGE)
    )
    return jsonify(
        {
            "conversation": payloads.summary(found),
            "messages": [payloads.message(m) for m in page],
            "complete": not page or page[0].seq == 1,
            "history": [payloads.summary(c) for c in history],
        }
    )


@bp.get("/api/conversations/<int:conversation_id>/messages")
@login_required
def messages(conversation_id: int):
    return history_page(conversations.agent_conversation(conversation_id).id)


@bp.post("/api/conversations/<int:conversation_id>/messages")
@login_required
def reply(conversation_id: int):
    data = json_body()
    message, created = conversations.post_agent_message(
        current_user, conversation_id, data.get("client_id"), data.get("body")
    )
    return jsonify({"message": payloads.message(message)}), 201 if created else 200


@bp.post("/api/conversations/<int:conversation_id>/take")
@login_required
def take(conversation_id: int):
    return jsonify({"conversation": payloads.summary(conversations.take(current_user, conversation_id))})


@bp.post("/api/conversations/<int:conversation_id>/end")
@login_required
def end(conversation_id: int):
    return jsonify({"conversation": payloads.summary(conversations.end(current_user, conversation_id))})
