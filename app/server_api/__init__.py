"""The API for the site's backend (`/api/server/…`, an API key as bearer token): list and read
conversations, post agents' messages, answer and hand over as the workstream's bot, erase a customer,
through the same lifecycle functions as the console."""

from flask import Blueprint, g, jsonify, request
from sqlalchemy import select

from .. import api_keys, bots, conversations, payloads, privacy
from ..api import history_page, int_arg, json_body
from ..errors import ChatError, not_found
from ..extensions import csrf, db
from ..models import STATUSES, Agent, Conversation, Customer, Workstream

bp = Blueprint("server_api", __name__, url_prefix="/api/server")
# A bearer key, never a cookie: there is nothing to forge.
csrf.exempt(bp)


@bp.before_request
def authenticate() -> None:
    g.api_key = api_keys.authenticate(request.headers.get("Authorization"))


def _conversation(conversation_id: int) -> Conversation:
    """Outside the key's workstreams a conversation does not exist, as far as the key can tell."""
    conversation = db.session.get(Conversation, conversation_id)
    if conversation is None or not g.api_key.allows(conversation.workstream_id):
        raise not_found()
    return conversation


@bp.get("/workstreams/<workstream_id>/conversations")
def list_conversations(workstream_id: str):
    """Newest first; `status` filters, `before` (a conversation id) pages."""
    if not g.api_key.allows(workstream_id):
        raise not_found("workstream")
    query = select(Conversation).where(Conversation.workstream_id == workstream_id)
    status = request.args.get("status")
    if status is not None:
        if status not in STATUSES:
            raise ChatError(400, "invalid_request", f"status must be one of {', '.join(STATUSES)}.")
        query = query.where(Conversation.status == status)
    before = int_arg("before", low=1)
    if before is not None:
        query = query.where(Conversation.id < before)
    limit = int_arg("limit", 20, low=1, high=100)
    found = db.session.scalars(query.order_by(Conversation.id.desc()).limit(limit))
    return jsonify({"conversations": [payloads.summary(c) for c in found]})


@bp.get("/conversations/<int:conversation_id>")
def get_conversation(conversation_id: int):
    return jsonify({"conversation": payloads.summary(_conversation(conversation_id))})


@bp.get("/conversations/<int:conversation_id>/messages")
def conversation_messages(conversation_id: int):
    return history_page(_conversation(conversation_id).id)


def _as_the_bot(conversation: Conversation) -> None:
    if not bots.is_the_bot(conversation.workstream, g.api_key):
        raise ChatError(403, "not_the_bot", "Only the workstream's bot, with its own API key, answers as the bot.")


@bp.post("/conversations/<int:conversation_id>/messages")
def post_message(conversation_id: int):
    """An agent's message, as if from their console: `{"agent_id", "client_id", "body"}`; the agent must
    be the one assigned, the conversation active. Or the bot's: `{"sender": "bot", "client_id", "body"}`
    with the bot's key, while the conversation is with the bot."""
    data = json_body()
    conversation = _conversation(conversation_id)
    sender = data.get("sender", "agent")
    if sender not in ("agent", "bot"):
        raise ChatError(400, "invalid_request", 'sender must be "agent" (with agent_id) or "bot".')
    if sender == "bot":
        _as_the_bot(conversation)
        message, created = conversations.post_bot_message(conversation.id, data.get("client_id"), data.get("body"))
        return jsonify({"message": payloads.message(message)}), 201 if created else 200
    agent_id = data.get("agent_id")
    agent = db.session.get(Agent, agent_id) if isinstance(agent_id, int) and not isinstance(agent_id, bool) else None
    if agent is None:
        raise ChatError(400, "invalid_request", "agent_id must be an agent's id.")
    message, created = conversations.post_agent_message(agent, conversation.id, data.get("client_id"), data.get("body"))
    return jsonify({"message": payloads.message(message)}), 201 if created else 200


@bp.post("/conversations/<int:conversation_id>/handover")
def hand_over(conversation_id: int):
    """The bot passes the conversation to people: it joins the queue (or goes to an agent) at once."""
    conversation = _conversation(conversation_id)
    _as_the_bot(conversation)
    return jsonify({"conversation": payloads.summary(conversations.hand_over(conversation.id, "bot"))})


@bp.post("/customers/erase")
def erase_customer():
    """The site's user deleted their account: `{"sub"}` erases the customer of that sub under the
    authentication settings of the key's workstreams. A customer with conversations in workstreams
    outside the key's is refused (409): an admin erases them."""
    sub = json_body().get("sub")
    if not isinstance(sub, str) or not sub:
        raise ChatError(400, "invalid_request", "sub must be the customer's sub claim.")
    scope = g.api_key.workstream_ids.split()
    settings = set(db.session.scalars(select(Workstream.auth_setting_id).where(Workstream.id.in_(scope))))
    theirs = select(Customer).where(Customer.sub == sub, Customer.auth_setting_id.in_(settings))
    found = list(db.session.scalars(theirs))
    for customer in found:
        outside = db.session.scalar(
            select(Conversation.id)
            .where(Conversation.customer_id == customer.id, Conversation.workstream_id.not_in(scope))
            .limit(1)
        )
        if outside is not None:
            raise ChatError(409, "out_of_scope", "This customer also has conversations this key cannot see.")
    erased = {"customers": 0, "conversations": 0, "messages": 0}
    for customer in found:
        counts = privacy.erase(customer, None, actor_name=f"API key {g.api_key.name}")
        erased["customers"] += 1
        erased["conversations"] += counts["conversations"]
        erased["messages"] += counts["messages"]
    return jsonify({"erased": erased})
