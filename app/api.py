"""Small helpers shared by the JSON APIs of the widget and the console."""

from flask import Response, jsonify, request

from . import checked, conversations, payloads
from .errors import ChatError


def json_body() -> dict:
    return checked.json_object(request.get_data())


def int_arg(name: str, default: int | None = None, *, low: int = 0, high: int = checked.MAX_INT) -> int | None:
    return checked.query_integer(request.args.get(name), name, default, low, high)


def history_page(conversation_id: int) -> Response:
    """A page of a conversation's messages by `after` or `before` sequence cursor."""
    before = int_arg("before", low=1)
    after = int_arg("after", low=0)
    if before is not None and after is not None:
        raise ChatError(400, "invalid_request", "Give either after or before, not both.")
    limit = int_arg("limit", 50, low=1, high=100)
    page = conversations.messages_page(conversation_id, after=after, before=before, limit=limit)
    return jsonify({"messages": payloads.messages(page)})
