"""The console's JSON API (docs/protocol.md). Routes stay thin: the lifecycle lives in conversations."""

from flask import Response, jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import canned, conversations, labels, notes, payloads, reports, routing, search, supervision
from ..api import history_page, int_arg, json_body
from ..errors import ChatError
from ..extensions import db
from ..models import Conversation
from . import bp, snapshot

PAGE = 50
MAX_SUMMARIES = 100


@bp.get("/api/me")
@login_required
def me():
    return jsonify(snapshot.me(current_user))


@bp.get("/api/agents")
@login_required
def agents():
    """Everyone's presence, for the transfer menu and to see who is around."""
    return jsonify({"agents": snapshot.team()})


@bp.post("/api/presence")
@login_required
def presence():
    routing.set_presence(current_user, json_body().get("presence"))
    return me()


@bp.post("/api/notifications")
@login_required
def notification_settings():
    """`{"email": bool}`: email me when a customer returns to me or I am assigned a conversation while
    none of my consoles is open."""
    email = json_body().get("email")
    if not isinstance(email, bool):
        raise ChatError(400, "invalid_request", "email must be true or false.")
    current_user.notify_email = email
    db.session.commit()
    return me()


@bp.get("/api/conversations")
@login_required
def lists():
    return jsonify(snapshot.lists(current_user))


@bp.get("/api/summaries")
@login_required
def summaries():
    """`?ids=3,5,8`: these conversations' summaries (unknown ids are left out), for a console whose
    queue window moved onto conversations it holds only the ids of."""
    raw = request.args.get("ids", "")
    try:
        ids = [int(part) for part in raw.split(",")] if raw else []
    except ValueError:
        raise ChatError(400, "invalid_request", "ids must be conversation ids separated by commas.") from None
    if len(ids) > MAX_SUMMARIES or not all(0 < i < 2**31 for i in ids):
        raise ChatError(400, "invalid_request", f"ids must be 1 to {MAX_SUMMARIES} conversation ids.")
    found = db.session.scalars(select(Conversation).where(Conversation.id.in_(ids)).order_by(Conversation.id)).all()
    return jsonify({"conversations": payloads.summaries(list(found))})


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
            "messages": payloads.messages(page),
            "complete": not page or page[0].seq == 1,
            "history": payloads.summaries(list(history)),
            "notes": [notes.payload(n) for n in notes.of(found.id)],
        }
    )


@bp.get("/api/conversations/<int:conversation_id>/notes")
@login_required
def conversation_notes(conversation_id: int):
    found = conversations.agent_conversation(conversation_id)
    return jsonify({"notes": [notes.payload(n) for n in notes.of(found.id)]})


@bp.post("/api/conversations/<int:conversation_id>/notes")
@login_required
def add_note(conversation_id: int):
    note = notes.add(current_user, conversation_id, json_body().get("body"))
    return jsonify({"note": notes.payload(note)}), 201


@bp.get("/api/conversations/<int:conversation_id>/messages")
@login_required
def messages(conversation_id: int):
    return history_page(conversations.agent_conversation(conversation_id).id)


@bp.post("/api/conversations/<int:conversation_id>/messages")
@login_required
def reply(conversation_id: int):
    data = json_body()
    message, created = conversations.post_agent_message(
        current_user, conversation_id, data.get("client_id"), data.get("body"), data.get("attachments")
    )
    return jsonify({"message": payloads.message(message)}), 201 if created else 200


def _step(action, conversation_id: int, *args):
    return jsonify({"conversation": payloads.summary(action(current_user, conversation_id, *args))})


@bp.post("/api/conversations/<int:conversation_id>/take")
@login_required
def take(conversation_id: int):
    return _step(routing.take, conversation_id)


@bp.post("/api/conversations/<int:conversation_id>/accept")
@login_required
def accept(conversation_id: int):
    return _step(routing.accept, conversation_id)


@bp.post("/api/conversations/<int:conversation_id>/transfer")
@login_required
def transfer(conversation_id: int):
    data = json_body()
    if "agent_id" not in data:
        raise ChatError(400, "invalid_request", "agent_id is required (null sends it back to the queue).")
    return _step(routing.transfer, conversation_id, data["agent_id"])


@bp.post("/api/conversations/<int:conversation_id>/park")
@login_required
def park(conversation_id: int):
    return _step(conversations.park, conversation_id)


@bp.post("/api/conversations/<int:conversation_id>/resume")
@login_required
def resume(conversation_id: int):
    return _step(conversations.resume, conversation_id)


@bp.post("/api/conversations/<int:conversation_id>/end")
@login_required
def end(conversation_id: int):
    return _step(conversations.end, conversation_id)


@bp.post("/api/conversations/<int:conversation_id>/close")
@login_required
def close_wrap_up(conversation_id: int):
    return _step(conversations.close_wrap_up, conversation_id)


@bp.get("/api/canned")
@login_required
def canned_list():
    return jsonify({"canned": [canned.payload(c) for c in canned.visible_to(current_user)]})


@bp.post("/api/canned")
@login_required
def canned_create():
    return jsonify({"canned": canned.payload(canned.create(current_user, json_body()))}), 201


@bp.patch("/api/canned/<int:item_id>")
@login_required
def canned_update(item_id: int):
    return jsonify({"canned": canned.payload(canned.update(current_user, item_id, json_body()))})


@bp.delete("/api/canned/<int:item_id>")
@login_required
def canned_delete(item_id: int):
    canned.delete(current_user, item_id)
    return "", 204


@bp.get("/api/search")
@login_required
def search_conversations():
    hits = search.search(search.filters_from(request.args), int_arg("limit", 20, low=1, high=search.MAX_RESULTS))
    found = payloads.summaries([h.conversation for h in hits])
    return jsonify(
        {
            "results": [
                {
                    "conversation": summary,
                    "message": payloads.message(h.message) if h.message else None,
                    "snippet": search.segments(h.snippet) if h.snippet else None,
                }
                for h, summary in zip(hits, found, strict=True)
            ]
        }
    )


@bp.get("/api/labels")
@login_required
def label_list():
    return jsonify({"labels": [labels.payload(label) for label in labels.all_labels()]})


@bp.post("/api/labels")
@login_required
def label_create():
    return jsonify({"label": labels.payload(labels.create(current_user, json_body()))}), 201


@bp.patch("/api/labels/<int:label_id>")
@login_required
def label_update(label_id: int):
    return jsonify({"label": labels.payload(labels.update(current_user, label_id, json_body()))})


@bp.delete("/api/labels/<int:label_id>")
@login_required
def label_delete(label_id: int):
    labels.remove(current_user, label_id)
    return "", 204


@bp.put("/api/conversations/<int:conversation_id>/labels")
@login_required
def conversation_labels(conversation_id: int):
    on = labels.put_on(current_user, conversation_id, json_body().get("label_ids"))
    return jsonify({"labels": [labels.payload(label) for label in on]})


@bp.get("/api/team/conversations")
@login_required
def team_conversations():
    found = supervision.team_conversations(current_user)
    return jsonify({"conversations": payloads.summaries(found)})


@bp.post("/api/conversations/<int:conversation_id>/reassign")
@login_required
def reassign(conversation_id: int):
    data = json_body()
    if "agent_id" not in data:
        raise ChatError(400, "invalid_request", "agent_id is required (null sends it back to the queue).")
    return _step(supervision.reassign, conversation_id, data["agent_id"])


@bp.get("/api/reports")
@login_required
def report():
    rows = reports.daily(current_user, request.args)
    if request.args.get("format") == "csv":
        return Response(
            reports.as_csv(rows),
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="report.csv"'},
        )
    return jsonify({"rows": reports.as_dicts(rows)})
