"""What every websocket handler shares: JSON frames, one writer at a time, a pump from the event hub.

simple-websocket's send() is not thread-safe, so every send goes through one lock. A handler never
holds a database session across anything that waits on the network (the handshake, receive(), send()):
under gevent the wait lets other greenlets run, and on SQLite a transaction left open then holds the
write lock (BEGIN IMMEDIATE) while the others block the whole process in SQLite's busy wait. So each
handler calls `release_session()` before it waits or sends.
"""

import json
import threading
from collections.abc import Callable

from simple_websocket import ConnectionClosed

from .errors import ChatError
from .events import Subscription
from .extensions import db

_STOP = ""


class Connection:
    def __init__(self, ws):
        self.ws = ws
        self._lock = threading.Lock()
        self._pump: threading.Thread | None = None
        self._subscription: Subscription | None = None

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
        """Relay the subscription's frames to the socket from a writer of its own (a greenlet under
        gevent), so a socket waiting in receive() still gets live events at once."""
        self._subscription = subscription
        self._pump = threading.Thread(target=self._run_pump, daemon=True)
        self._pump.start()

    def _run_pump(self) -> None:
        assert self._subscription is not None
        while (frame := self._subscription.get()) != _STOP:
            try:
                self.send(frame)
            except ConnectionClosed:
                return

    def close(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription.deliver(_STOP)


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
