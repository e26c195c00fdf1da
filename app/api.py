"""Small helpers shared by the JSON APIs of the widget and the console."""

from flask import Response, jsonify, request

from . import conversations, payloads
from .errors import ChatError


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ChatError(400, "invalid_json", "The request body must be a JSON object.")
    return data


def int_arg(name: str, default: int | None = None, *, low: int = 0, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        upper = f" and {high}" if high is not None else " or more"
        raise ChatError(400, "invalid_request", f"{name} must be an integer, {low}{upper}.")
    return value


def history_page(conversation_id: int) -> Response:
    """A page of a conversation's messages by `after` or `before` sequence cursor."""
    before = int_arg("before", low=1)
    after = int_arg("after", low=0)
    if before is not None and after is not None:
        raise ChatError(400, "invalid_request", "Give either after or before, not both.")
    limit = int_arg("limit", 50, low=1, high=100)
    page = conversations.messages_page(conversation_id, after=after, before=before, limit=limit)
    return jsonify({"messages": payloads.messages(page)})
