"""What every websocket handler shares: JSON frames, one writer at a time, events forwarded from the hub,
bounded frames, and errors that end as frames.

simple-websocket's send() is not thread-safe, so every send goes through one lock. A handler never
holds a database session across anything that waits on the network (the handshake, receive(), send()):
under gevent the wait lets other greenlets run, and on SQLite a transaction left open then holds the
write lock (BEGIN IMMEDIATE) while the others wait for it. So each handler calls `release_session()`
before it waits or sends.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from functools import wraps
from typing import Any

import gevent
from flask import request
from gevent import monkey
from simple_websocket import ConnectionClosed
from wsproto.events import TextMessage
from wsproto.utilities import LocalProtocolError

from . import checked, events
from .errors import BUSY, Busy, ChatError
from .events import Subscription
from .extensions import db

log = logging.getLogger(__name__)

# A writer waits this long for more before it ends: a busy socket keeps one writer, an idle one has none.
WRITER_LINGER_SECONDS = 2.0
# No frame the server sends is bigger (the backlog is split to fit): clients and proxies can rely on it.
MAX_FRAME_BYTES = 256 * 1024
CLOSE_POLICY = 1008
CLOSE_SERVER_ERROR = 1011
CLOSE_RESYNC = 1012

# Each socket's connection while its handler runs (errors_as_frames removes it).
_connections: dict[Any, "Connection"] = {}
# Guards every connection's writer flags, each for a moment: one lock per idle socket would cost memory.
_flags = threading.Lock()


class _WholeWrites:
    """The socket as simple-websocket sees it, with send() writing every byte: simple-websocket 1.1.0
    calls socket.send() and drops whatever the kernel did not take, which cuts a big frame short on a
    slow reader (fixed upstream, not released). One lock, because its own thread writes pings, pongs
    and close frames beside our sends, and two half-written frames must not interleave."""

    def __init__(self, sock) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, data: bytes) -> int:
        with self._lock:
            self._sock.sendall(data)
        return len(data)

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _Accepted:
    """Stands in for wsproto's finished handshake, whose HTTP parser state (kilobytes a socket) it would
    otherwise keep for the socket's life: after the upgrade it has no more events to give."""

    def events(self):
        return iter(())


_ACCEPTED = _Accepted()


class Close(Exception):
    """Ends the socket with `code` (e.g. 1008) and `reason`, after `frame` when there is one to explain."""

    def __init__(self, code: int, reason: str, frame: dict | None = None):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.frame = frame


# Events after which the server closes the socket (code, reason): the customer's data has been erased.
CLOSING_FRAMES = {'{"type":"erased"}': (1008, "erased")}


class Connection:
    def __init__(self, ws):
        self.ws = ws
        ws.sock = _WholeWrites(ws.sock)
        if ws.ws.connection is not None:
            ws.ws.handshake = _ACCEPTED
        # While set (a time.monotonic() instant), the peer owes a frame by then or the socket is closed.
        self.deadline: float | None = None
        self.deadline_reason = "timeout"
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._ending: list[Subscription] = []
        self._writer_running = False
        self._closed = False
        _connections[ws] = self

    def send(self, *frames: dict | str) -> None:
        """Send now, in one write, ahead of anything queued: for what comes before the live stream
        (welcome, backlog) and errors."""
        self._send_all([f if isinstance(f, str) else json.dumps(f, separators=(",", ":")) for f in frames])

    def queue(self, frame: dict) -> None:
        """Send after what is already queued for this socket, in its writer's next write: an ack goes out
        in one system call with the message it acknowledges (on loopback a send costs more CPU than
        anything else a message does). Before the live stream starts, this is `send`."""
        text = json.dumps(frame, separators=(",", ":"))
        if self._subscription is None or self._subscription.on_delivery is None:
            self._send_all([text])
        else:
            self._subscription.deliver(text)

    def _send_all(self, texts: list[str]) -> None:
        """Write `texts` as frames in one write, as simple-websocket's send() writes one."""
        with self._lock:
            if not self.ws.connected:
                raise ConnectionClosed(self.ws.close_reason, self.ws.close_message)
            try:
                self.ws.sock.send(b"".join([self.ws.ws.send(TextMessage(data=text)) for text in texts]))
            except (OSError, LocalProtocolError) as error:
                # The peer is gone mid-write: the same as a closed socket to everyone above.
                raise ConnectionClosed() from error

    def receive(self) -> dict:
        """The next frame as a JSON object; a malformed one raises ChatError (the socket stays usable)."""
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        raw = self.ws.receive(timeout=timeout)
        if raw is None:
            raise Close(CLOSE_POLICY, self.deadline_reason)
        if isinstance(raw, bytes):
            raise ChatError(400, "invalid_json", "Frames must be JSON text.")
        frame = checked.loads(raw, "The frame")
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ChatError(400, "invalid_request", 'A frame is a JSON object with a string "type".')
        return frame

    def subscribe(self, channels: list[str]) -> Subscription:
        """Subscribe to the hub's `channels`; the connection owns the subscription from this moment, so
        that a refusal after it (a bad hello, a fault) cannot leave it behind: close() ends it."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self._subscription = events.hub.subscribe(channels)
        return self._subscription

    def forward(self) -> None:
        """Relay the subscription's frames, in order, to the socket. A writer (a greenlet under gevent) is
        started when frames arrive and ends when there have been none for a while: an idle socket, most
        of them, keeps no greenlet, and a slow socket never holds up whoever published."""
        assert self._subscription is not None
        self._subscription.on_delivery = self._wake
        # What arrived between subscribing and now. Most welcomes find nothing, and start no writer.
        if not self._subscription.empty():
            self._wake()

    def _wake(self) -> None:
        with _flags:
            if self._writer_running or self._closed:
                return
            self._writer_running = True
        _spawn(self._write_pending)

    def _write_pending(self) -> None:
        subscription = self._subscription
        assert subscription is not None
        try:
            while True:
                batch = subscription.take()
                if not batch:
                    frame = subscription.get(timeout=WRITER_LINGER_SECONDS)
                    if frame is None:
                        with _flags:
                            # Checked again under the lock: a frame delivered meanwhile saw a writer running.
                            if subscription.empty() or self._closed:
                                self._writer_running = False
                                return
                        continue
                    batch = [frame, *subscription.take()]
                # Everything queued goes in one write; nothing follows a frame that ends the socket.
                for index, frame in enumerate(batch):
                    if frame == events.RESYNC or frame in CLOSING_FRAMES:
                        del batch[index + 1 :]
                        break
                self._send_all(batch)
                if batch[-1] == events.RESYNC:
                    self.close_socket(CLOSE_RESYNC, "resync")
                    return
                if batch[-1] in CLOSING_FRAMES:
                    self.close_socket(*CLOSING_FRAMES[batch[-1]])
                    return
        except Exception as error:
            # Whatever ended this writer, the next delivery must be able to start another.
            with _flags:
                self._writer_running = False
            if not isinstance(error, ConnectionClosed):
                raise

    def fail(self, error: Exception, **extra) -> None:
        """End the connection for `error`: a refusal (ChatError) with its error frame and 1008, anything
        else with `server_error` and 1011, and one log line naming the cause (a traceback per socket
        would bury the log in an outage)."""
        if isinstance(error, ChatError):
            frame, code = error.frame(**extra), CLOSE_POLICY
        else:
            log.error("websocket %s failed: %s", request.path, _cause(error))
            frame, code = {**SERVER_ERROR, **extra}, CLOSE_SERVER_ERROR
        # Not across the send (see above); the session may be on a database that just failed.
        with suppress(Exception):
            release_session()
        self.close()
        with suppress(ConnectionClosed):
            self.send(frame)
        self.close_socket(code, frame["code"])

    def close_socket(self, code: int, reason: str) -> None:
        """Close from any greenlet: the handler's receive() waits only on the socket's event, so it is
        woken too, and ends with ConnectionClosed."""
        with self._lock, suppress(ConnectionClosed, OSError):
            self.ws.close(reason=code, message=reason)
        self.ws.event.set()

    def end_on(self, channels: list[str]) -> None:
        """End the socket when one of `channels` delivers: the frame (an error saying why) is sent, then
        the socket is closed with 1008. For what another request or process decides, such as a retired
        key; owned like the main subscription, so close() ends it."""
        subscription = events.hub.subscribe(channels)
        self._ending.append(subscription)
        subscription.on_delivery = lambda: _spawn(lambda: self._end(subscription))

    def _end(self, subscription: Subscription) -> None:
        frame = subscription.get(timeout=0)
        if frame is None:
            return
        with suppress(ConnectionClosed):
            self.send(frame)
        if frame == events.RESYNC:
            # The ending event itself may be what was missed: come back and be checked again.
            self.close_socket(CLOSE_RESYNC, "resync")
        else:
            self.close_socket(CLOSE_POLICY, json.loads(frame).get("code", ""))

    def close(self) -> None:
        with _flags:
            self._closed = True
        for subscription in [self._subscription, *self._ending]:
            if subscription is not None:
                subscription.on_delivery = None
                subscription.close()


def _spawn(target: Callable[[], None]) -> None:
    """Run `target` concurrently: a plain greenlet under gevent's monkey-patching (gunicorn's gevent
    worker), where starting a patched Thread costs several times more and a writer starts per burst."""
    if monkey.is_module_patched("threading"):
        gevent.spawn(target)
    else:
        threading.Thread(target=target, daemon=True).start()


def release_session() -> None:
    db.session.remove()


def loop(conn: Connection, handle: Callable[[dict], None]) -> None:
    """Receive frames until the socket closes; each is handled with a fresh database session, and an
    error answers that frame without ending the connection. An unexpected exception ends it with
    `server_error` (carrying the client_id of the send it answers)."""
    try:
        while True:
            frame: dict | None = None
            try:
                frame = conn.receive()
                handle(frame)
            except ChatError as error:
                conn.send(error.frame(**_answering(frame)))
            except BUSY as error:
                conn.send(busy(error).frame(**_answering(frame)))
            except (ConnectionClosed, Close):
                raise
            except Exception as error:
                conn.fail(error, **_answering(frame))
                return
            finally:
                release_session()
    except Close as close:
        with suppress(ConnectionClosed):
            if close.frame is not None:
                conn.send(close.frame)
        conn.close_socket(close.code, close.reason)
    except ConnectionClosed:
        pass
    finally:
        conn.close()


def busy(error: Exception) -> Busy:
    """The refusal for a database that could not be had in time (errors.BUSY), logged in one line: the
    socket stays open and the client tries again after `retry_after`."""
    log.warning("websocket %s: the database is busy: %s", request.path, _cause(error))
    return Busy()


def _answering(frame: dict | None) -> dict:
    """What an error frame carries of the frame it answers: the client_id of a send."""
    client_id = frame.get("client_id") if frame else None
    return {"client_id": client_id} if isinstance(client_id, str) else {}


SERVER_ERROR = {
    "type": "error",
    "code": "server_error",
    "message": "Something went wrong on the server. Reconnect and try again.",
}


def errors_as_frames(handler: Callable[..., None]) -> Callable[..., None]:
    """Whatever a socket handler raises ends as a frame and a close (see `Connection.fail`), never as
    an HTTP 500 page: flask-sock passes every exception but ConnectionClosed on to Flask, whose error
    response would be written into the upgraded socket as if it were websocket frames."""

    @wraps(handler)
    def run(ws, *args, **kwargs) -> None:
        try:
            handler(ws, *args, **kwargs)
        except ConnectionClosed:
            pass
        except Exception as error:
            (_connections.get(ws) or Connection(ws)).fail(error)
        finally:
            _connections.pop(ws, None)
            with suppress(Exception):
                release_session()

    return run


def _cause(error: BaseException) -> str:
    """One line: the driver's own error (SQLAlchemy wraps it with the statement) and its type."""
    cause = getattr(error, "orig", None) or error
    text = " ".join(str(cause).split())
    return f"{type(cause).__module__}.{type(cause).__name__}: {text[:300]}"


def backlog_frames(reset: bool, conversations: list[tuple[dict, list[dict], bool]]) -> list[str]:
    """The backlog `[(conversation, messages, complete)]` as frames of at most MAX_FRAME_BYTES: parts
    `{"type":"backlog","reset","conversations","more"}`, a conversation continuing in the next part
    when it does not fit. JSON is ASCII here (escaped), so characters count bytes."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    head = '{"type":"backlog","reset":' + dumps(reset) + ',"conversations":['
    budget = MAX_FRAME_BYTES - len(head) - len('],"more":false}')
    parts: list[list[str]] = [[]]
    size = 0  # of the entries in parts[-1], with their commas

    for conversation, messages, complete in conversations:
        opening = '{"conversation":' + dumps(conversation) + ',"messages":['
        closing = '],"complete":' + dumps(complete) + "}"
        empty = len(opening) + len(closing) + 1
        batch: list[str] = []
        batch_size = empty
        for text in map(dumps, messages):
            if size + batch_size + len(text) + 1 > budget and (batch or parts[-1]):
                if batch:
                    parts[-1].append(opening + ",".join(batch) + closing)
                parts.append([])
                size, batch, batch_size = 0, [], empty
            batch.append(text)
            batch_size += len(text) + 1
        if size + batch_size > budget and parts[-1]:
            parts.append([])
            size = 0
        parts[-1].append(opening + ",".join(batch) + closing)
        size += batch_size

    tails = ['],"more":true}'] * (len(parts) - 1) + ['],"more":false}']
    return [head + ",".join(part) + tail for part, tail in zip(parts, tails, strict=True)]
