"""The widget's websocket: hello, backlog, live stream, sends. Frames are in docs/protocol.md."""

import time

from flask import current_app, request

from .. import (
    admission,
    automated_messages,
    clock,
    conversations,
    customer_auth,
    ephemeral,
    events,
    payloads,
    rates,
    read_state,
    realtime,
    returning,
    routing,
    workstream_copies,
)
from ..appearance import for_widget as appearance_for_widget
from ..errors import BUSY, ChatError
from ..extensions import db, sock
from ..models import Customer, Workstream
from . import bp
from .routes import check_origin


@bp.before_request
def guard_socket() -> None:
    # Refuse before the handshake, so a foreign page gets a plain 403 and never an open socket.
    if request.endpoint == "widget_api.widget_socket":
        # First, before any database access: a flood of handshakes is refused as cheaply as it can be.
        admission.admit()
        try:
            check_origin(_workstream(request.args.get("workstream")))
        finally:
            # The handshake and the wait for hello yield to other greenlets: no transaction (and so
            # no SQLite write lock) may stay open across them.
            realtime.release_session()


def _workstream(workstream_id: str | None) -> Workstream:
    """The process's copy (workstream_copies.py): nothing a widget socket reads of its workstream costs
    the database a statement per handshake or hello."""
    workstream = workstream_copies.workstream(workstream_id)
    if workstream is None:
        raise ChatError(404, "unknown_workstream", "No such workstream.")
    return workstream


def _hours(workstream: Workstream, locale: str | None) -> dict:
    """Whether the team is in now and, if not, when it is back (persistent customers may still write)
    and the workstream's out-of-hours or holiday message, if it has that on."""
    now = clock.now()
    if routing.is_open(workstream, now):
        return {"open": True, "opens_at": None, "message": None}
    return {
        "open": False,
        "opens_at": clock.iso(routing.opens_at(workstream, now)),
        "message": automated_messages.closed_notice(workstream, now, routing.is_holiday(workstream, now), locale),
    }


def _welcome(conn: realtime.Connection, workstream_id: str, hello: dict) -> dict:
    """Authenticate a hello and send welcome and backlog; returns what the socket keeps of it: the
    identity, the customer's id and when the token runs out (so a send needs no lookups)."""
    workstream = _workstream(workstream_id)
    identity = customer_auth.verify(workstream, hello.get("token"))
    admission.verified()
    with admission.hello_turn():
        customer_id = returning.customer_id(identity)
        if customer_id is None:
            customer_id = conversations.customer_for(identity).id
            # Its connection goes back before the backlog's reads take one: a hello holds one at a
            # time, or the hellos that hello_turn lets in at once (the pool's size) would want twice
            # as many.
            realtime.release_session()
        admission.said_hello(customer_id)
        # Subscribe before reading the backlog: nothing committed in between can fall through the gap.
        conn.subscribe([events.customer_channel(customer_id, workstream.id)])
        if identity.kid is not None:
            conn.end_on([events.auth_key_channel(identity.auth_setting_id, identity.kid)])
        cursor = hello.get("conversation_id"), hello.get("after")
        found = returning.backlog(customer_id, workstream, *cursor)
        reset, entries = found or conversations.backlog(customer_id, workstream.id, *cursor)
        welcome = {
            "type": "welcome",
            "customer": {"id": customer_id, "sub": identity.sub},
            "workstream": payloads.widget_workstream(workstream),
            "hours": _hours(workstream, automated_messages.validate_locale(hello.get("locale"))),
            "appearance": appearance_for_widget(workstream),
        }
        backlog = realtime.backlog_frames(
            reset,
            [(payloads.widget_conversation(c), payloads.messages(page), complete) for c, page, complete in entries],
        )
        kept = {
            "identity": identity,
            "customer_id": customer_id,
            "valid_until": customer_auth.valid_until(identity, workstream.auth_setting),
        }
        realtime.release_session()
    conn.send(welcome, *backlog)
    conn.forward()
    return kept


@sock.route(admission.WIDGET_SOCKET_PATH, bp=bp)
@realtime.errors_as_frames
def widget_socket(ws) -> None:
    conn = realtime.Connection(ws)
    conn.deadline_reason = "hello_timeout"
    conn.deadline = time.monotonic() + current_app.config["HELLO_TIMEOUT_SECONDS"]
    workstream_id = request.args["workstream"]
    session: dict = {}

    def handle(frame: dict) -> None:
        kind = frame["type"]
        if kind == "ping":
            conn.queue({"type": "pong"})
        elif kind == "hello":
            if session:
                raise ChatError(400, "invalid_request", "This socket has already said hello.")
            try:
                session.update(_welcome(conn, workstream_id, frame), locale=frame.get("locale"))
                conn.deadline = None
            except (ChatError, *BUSY) as error:
                refusal = error if isinstance(error, ChatError) else realtime.busy(error)
                realtime.release_session()
                conn.send(refusal.frame())
                ws.close(reason=1008, message=refusal.code)
        elif not session:
            raise ChatError(400, "hello_required", "Send hello with a customer token first.")
        elif kind == "locale":
            session["locale"] = automated_messages.validate_locale(frame.get("locale"))
            # An out-of-hours notice on screen is in the old language: send it again in the new one.
            hours = _hours(_workstream(workstream_id), session["locale"])
            realtime.release_session()
            conn.send({"type": "hours", "hours": hours})
        elif kind == "send":
            if customer_auth.expired(session["valid_until"]):
                # The widget asks its page for a fresh token, says hello again and resends (same client_id).
                raise customer_auth.refuse("expired", "The customer token has expired; reconnect with a new one.")
            message, _created = conversations.post_customer_message(
                workstream_id,
                session["customer_id"],
                frame.get("client_id"),
                frame.get("body"),
                session["identity"].context,
                session["locale"],
                frame.get("attachments"),
            )
            ack = {
                "type": "ack",
                "client_id": message.client_id,
                "conversation_id": message.conversation_id,
                "seq": message.seq,
            }
            realtime.release_session()
            conn.queue(ack)
        elif kind == "end":
            workstream = db.session.get(Workstream, workstream_id)
            customer = db.session.get(Customer, session["customer_id"])
            conversations.end_by_customer(customer, workstream, frame.get("conversation_id"))
        elif kind == "typing":
            ephemeral.customer_typing(session["customer_id"], workstream_id)
        elif kind == "read":
            read_state.customer_read(
                session["customer_id"], workstream_id, frame.get("conversation_id"), frame.get("seq")
            )
        else:
            raise ChatError(400, "unknown_type", f"Unknown frame type {kind!r}.")

    realtime.loop(conn, rates.SocketRates().guard(handle))
