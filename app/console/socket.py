"""The console's websocket: state changes for everyone's lists, messages of mine and of the one I watch."""

from urllib.parse import urlsplit

from flask import request
from flask_login import current_user

from .. import conversations, ephemeral, events, realtime, routing
from ..errors import ChatError
from ..extensions import db, sock
from ..models import Agent
from . import bp, snapshot


@bp.before_request
def guard_socket():
    # A cookie-authenticated socket must come from the console's own pages (cross-site hijacking).
    if request.endpoint == "console.console_socket":
        try:
            if not current_user.is_authenticated:
                raise ChatError(401, "not_authenticated", "Sign in first.")
        finally:
            # Loading the agent opened a transaction; the handshake must not hold it (see realtime.py).
            realtime.release_session()
        origin = request.headers.get("Origin")
        if not origin or urlsplit(origin).netloc != request.host:
            raise ChatError(403, "forbidden_origin", "The console socket is only for the console's own pages.")


@sock.route("/ws", bp=bp)
@realtime.errors_as_frames
def console_socket(ws) -> None:
    conn = realtime.Connection(ws)
    agent_id = current_user.id
    # Subscribe before reading the snapshot: nothing committed in between can fall through the gap.
    # Events queued meanwhile follow the snapshot; the summaries' versions let the console ignore any
    # it already holds.
    subscription = conn.subscribe([events.CONSOLE_CHANNEL, events.agent_channel(agent_id)])
    # A password change, a disable or a sign-out elsewhere ends this socket too.
    conn.end_on([events.session_channel(agent_id)])
    routing.seen(agent_id)
    agent = db.session.get(Agent, agent_id)
    if agent is None:
        raise ChatError(401, "not_authenticated", "Sign in first.")
    parts = snapshot.frames(snapshot.snapshot(agent))
    realtime.release_session()
    conn.send(*parts)
    conn.forward()
    watched: list[str] = []

    def handle(frame: dict) -> None:
        kind = frame["type"]
        if kind == "ping":
            # The console's heartbeat: an agent whose consoles all fall silent goes offline (timers.py).
            routing.seen(agent_id)
            conn.queue({"type": "pong"})
        elif kind == "watch":
            conversation_id = frame.get("conversation_id")
            if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
                raise ChatError(400, "invalid_request", "conversation_id must be an integer.")
            conversations.agent_conversation(conversation_id)
            for channel in watched:
                subscription.remove(channel)
            watched[:] = [events.conversation_channel(conversation_id)]
            subscription.add(watched[0])
        elif kind == "typing":
            ephemeral.agent_typing(agent_id, frame.get("conversation_id"))
        else:
            raise ChatError(400, "unknown_type", f"Unknown frame type {kind!r}.")

    try:
        realtime.loop(conn, handle)
    finally:
        # The grace period for going offline starts when the connection goes away.
        routing.seen(agent_id)
        realtime.release_session()
