"""The agent's uploads into a conversation they may reply in."""

from flask import current_app, jsonify, request
from flask_login import current_user, login_required
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from .. import attachments, conversations
from ..errors import ChatError
from ..extensions import csrf
from . import bp


@bp.post("/api/conversations/<int:conversation_id>/attachments")
@attachments.streams_body
@csrf.exempt
@login_required
def upload_attachment(conversation_id: int):
    # Checked here rather than before the request: the global check would read the body as a form.
    if current_app.config.get("WTF_CSRF_ENABLED", True):
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError as refused:
            raise ChatError(400, "csrf_failed", str(refused)) from refused
    conversation = conversations.agent_conversation(conversation_id)
    if conversation.agent_id != current_user.id or conversation.status != "active":
        raise ChatError(409, "wrong_state", "Only the assigned agent can reply, while the conversation is active.")
    stored = attachments.upload(
        attachments.request_body(),
        request.content_length,
        request.args.get("name"),
        conversation.workstream,
        agent_id=current_user.id,
        conversation_id=conversation.id,
    )
    return jsonify({"attachment": attachments.describe(stored)}), 201
