"""The widget's HTTP side: the script itself, history pages and a plain-HTTP send, with CORS for the
origins each workstream allows."""

import hashlib
from functools import lru_cache

import rjsmin
from flask import Response, g, jsonify, request

from .. import ROOT, conversations, csat, customer_auth, payloads, rates
from ..api import history_page, int_arg, json_body
from ..errors import ChatError
from ..extensions import db
from ..models import Workstream
from . import bp

API = "/api/widget/workstreams/<workstream_id>"


def workstream_or_404(workstream_id: str | None) -> Workstream:
    workstream = db.session.get(Workstream, workstream_id) if workstream_id else None
    if workstream is None:
        raise ChatError(404, "unknown_workstream", "No such workstream.")
    return workstream


def check_origin(workstream: Workstream) -> None:
    # Browsers always send Origin cross-site; a request without one is not a browser on another site.
    origin = request.headers.get("Origin")
    if origin is not None and not workstream.allows_origin(origin):
        raise ChatError(403, "forbidden_origin", "This site is not allowed to embed this chat.")


# The widget's source, after the rule for showing times that it shares with the console.
WIDGET_SOURCES = (ROOT / "static" / "message_time.js", ROOT / "widget" / "widget.js")


@bp.get("/widget.js")
def widget_script() -> Response:
    body, etag = _minified_widget(tuple(path.stat().st_mtime_ns for path in WIDGET_SOURCES))
    response = Response(body, mimetype="text/javascript")
    response.set_etag(etag)
    response.cache_control.public = True
    response.cache_control.max_age = 300
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response.make_conditional(request)


@lru_cache(maxsize=1)
def _minified_widget(_mtimes: tuple[int, ...]) -> tuple[bytes, str]:
    """What every host page downloads, so it is minified (about a third smaller gzipped), once per
    change of a source file; the sources stay readable. One closure holds them all: the host page gets
    no global but the widget's own."""
    sources = "\n".join(path.read_text(encoding="utf-8") for path in WIDGET_SOURCES)
    body = rjsmin.jsmin(f"(function () {{\n{sources}\n}})();\n").encode()
    return body, hashlib.sha256(body).hexdigest()[:32]


@bp.get("/api/widget/embedding")
def embedding() -> Response:
    """Whether the asking page's origin may embed a workstream. Open to every origin: a browser hides
    why a websocket handshake was refused, so a widget whose socket fails asks here and can say "not
    enabled for this website" instead of retrying for ever. It tells nothing a non-browser client could
    not learn by trying the handshake with any Origin header."""
    workstream_id = request.args.get("workstream")
    workstream = db.session.get(Workstream, workstream_id) if workstream_id else None
    if workstream is None:
        response = jsonify(ChatError(404, "unknown_workstream", "No such workstream.").body())
        response.status_code = 404
    else:
        response = jsonify({"allowed": workstream.allows_origin(request.headers.get("Origin"))})
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def guard_api() -> None:
    if request.view_args and "workstream_id" in request.view_args and request.path.startswith("/api/"):
        g.workstream = workstream_or_404(request.view_args["workstream_id"])
        check_origin(g.workstream)


# Every request of the widget's HTTP API from one address, counted before anything else is done for it:
# a script looping over it is refused before it costs a token check or a database read.
rates.limiter.limit(
    rates.setting("WIDGET_REQUESTS_PER_ADDRESS"),
    key_func=lambda: rates.key("widget-api", request.remote_addr),
    exempt_when=lambda: not request.path.startswith("/api/"),
)(bp)


@bp.after_request
def cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    workstream = g.get("workstream")
    if origin and workstream is not None and workstream.allows_origin(origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
    return response


def _customer():
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else None
    g.identity = customer_auth.verify(g.workstream, token)
    return conversations.customer_for(g.identity)


@bp.get(f"{API}/conversations")
def list_conversations(workstream_id: str):
    customer = _customer()
    found = conversations.customer_conversations(
        customer.id,
        workstream_id,
        before=int_arg("before", low=1),
        limit=int_arg("limit", 20, low=1, high=50),
    )
    return jsonify({"conversations": [payloads.widget_conversation(c) for c in found]})


@bp.get(f"{API}/conversations/<int:conversation_id>/messages")
def conversation_messages(workstream_id: str, conversation_id: int):
    customer = _customer()
    conversation = conversations.customer_conversation(customer.id, workstream_id, conversation_id)
    return history_page(conversation.id)


@bp.post(f"{API}/messages")
def send_message(workstream_id: str):
    # The body first: a refused one must not have created the customer's record.
    data = json_body()
    customer = _customer()
    message, created = conversations.post_customer_message(
        g.workstream.id,
        customer.id,
        data.get("client_id"),
        data.get("body"),
        g.identity.context,
        data.get("locale"),
        data.get("attachments"),
    )
    return jsonify({"message": payloads.message(message)}), 201 if created else 200


@bp.post(f"{API}/visitors")
# A browser asks once per session; a script asking thousands of times is making customer records.
@rates.limiter.limit(
    rates.setting("VISITOR_TOKENS_PER_ADDRESS"),
    key_func=lambda: rates.key("visitors", request.remote_addr, request.view_args["workstream_id"]),
)
def new_visitor(workstream_id: str):
    """An anonymous visitor's token for a live workstream; the widget keeps it for the browser session."""
    return jsonify({"token": customer_auth.issue_visitor_token(g.workstream)}), 201


@bp.post(f"{API}/conversations/<int:conversation_id>/end")
def end_conversation(workstream_id: str, conversation_id: int):
    customer = _customer()
    ended = conversations.end_by_customer(customer, g.workstream, conversation_id)
    return jsonify({"conversation": payloads.widget_conversation(ended)})


@bp.get(f"{API}/conversations/<int:conversation_id>/transcript")
def transcript(workstream_id: str, conversation_id: int):
    customer = _customer()
    conversation = conversations.customer_conversation(customer.id, workstream_id, conversation_id)
    return Response(
        conversations.transcript(conversation),
        mimetype="text/plain",
        headers={"Content-Disposition": f'attachment; filename="chat-{conversation.id}.txt"'},
    )


@bp.post(f"{API}/conversations/<int:conversation_id>/rating")
def rate_conversation(workstream_id: str, conversation_id: int):
    customer = _customer()
    data = json_body()
    rating = csat.rate(customer, g.workstream, conversation_id, data.get("score"), data.get("comment"))
    return jsonify({"rating": csat.payload(rating)}), 201
