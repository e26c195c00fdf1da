"""What every websocket handler shares: JSON frames, one writer at a time, events forwarded from the hub.

simple-websocket's send() is not thread-safe, so every send goes through one lock. A handler never
holds a database session across anything that waits on the network (the handshake, receive(), send()):
under gevent the wait lets other greenlets run, and on SQLite a transaction left open then holds the
write lock (BEGIN IMMEDIATE) while the others block the whole process in SQLite's busy wait. So each
handler calls `release_session()` before it waits or sends.
"""

import json
import threading
from collections.abc import Callable

import gevent
from gevent import monkey
from simple_websocket import ConnectionClosed

from .errors import ChatError
from .events import Subscription
from .extensions import db

# A writer waits this long for more before it ends: a busy socket keeps one writer, an idle one has none.
WRITER_LINGER_SECONDS = 2.0
# Events after which the server closes the socket (code, reason): the customer's data has been erased.
CLOSING_FRAMES = {'{"type":"erased"}': (1008, "erased")}


class Connection:
    def __init__(self, ws):
        self.ws = ws
        self._lock = threading.Lock()
        self._subscription: Subscription | None = None
        self._writing = threading.Lock()
        self._writer_running = False
        self._closed = False

    def send(self, frame: dict | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":"))
        with self._lock:
            self.ws.send(text)

    def receive(self) -> dict:
        """The next frame as a JSON object; a malformed one raises ChatError (the socket stays usable)."""
        raw = self.ws.receive()
        if isinstance(raw, bytes):
            raise ChatError(400, "invalid_json", "Frames must be JSON text.")
        try:
            frame = json.loads(raw)
        except (TypeError, ValueError) as e:
            raise ChatError(400, "invalid_json", "The frame is not valid JSON.") from e
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ChatError(400, "invalid_request", 'A frame is a JSON object with a string "type".')
        return frame

    def forward(self, subscription: Subscription) -> None:
        """Relay the subscription's frames, in order, to the socket. A writer (a greenlet under gevent) is
        started when frames arrive and ends when there have been none for a while: an idle socket, most
        of them, keeps no greenlet, and a slow socket never holds up whoever published."""
        self._subscription = subscription
        subscription.on_delivery = self._wake
        self._wake()  # what arrived between subscribing and now

    def _wake(self) -> None:
        with self._writing:
            if self._writer_running or self._closed:
                return
            self._writer_running = True
        _spawn(self._write_pending)

    def _write_pending(self) -> None:
        subscription = self._subscription
        assert subscription is not None
        try:
            while True:
                frame = subscription.get(timeout=0)
                if frame is None:
                    frame = subscription.get(timeout=WRITER_LINGER_SECONDS)
                if frame is None:
                    with self._writing:
                        # Checked again under the lock: a frame delivered meanwhile saw a writer running.
                        if subscription.empty() or self._closed:
                            self._writer_running = False
                            return
                    continue
                self.send(frame)
                if frame in CLOSING_FRAMES:
                    self.ws.close(*CLOSING_FRAMES[frame])
        except Exception as error:
            # Whatever ended this writer, the next delivery must be able to start another.
            with self._writing:
                self._writer_running = False
            if not isinstance(error, ConnectionClosed):
                raise

    def close(self) -> None:
        with self._writing:
            self._closed = True
        if self._subscription is not None:
            self._subscription.on_delivery = None
            self._subscription.close()


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
    error answers that frame without ending the connection."""
    try:
        while True:
            frame: dict | None = None
            try:
                frame = conn.receive()
                handle(frame)
            except ChatError as error:
                client_id = frame.get("client_id") if frame else None
                conn.send(error.frame(**({"client_id": client_id} if isinstance(client_id, str) else {})))
            finally:
                release_session()
    except ConnectionClosed:
        pass
    finally:
        conn.close()
