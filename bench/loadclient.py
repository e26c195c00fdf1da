"""The load client of bench/team.py: one process of customers' widgets (and, when given, an agent's
console) on `websockets` with uvloop, driven by the parent through a pipe.

It imports nothing of the server, so that a spawned process starts at once and its CPU is the client's
own. Times are `time.perf_counter_ns()` (CLOCK_MONOTONIC, the same in every process of the machine).
"""

import asyncio
import collections
import contextlib
import gc
import itertools
import json
import random
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import uvloop
import websockets

# The widget's reconnect backoff (widget/widget.js: BACKOFF_MIN, BACKOFF_SOON, SOON_ATTEMPTS), so that a
# herd after a restart is spread as real widgets spread it.
BACKOFF_MIN = 0.5
BACKOFF_SOON = 6.0
SOON_ATTEMPTS = 12
BACKOFF_MAX = 30.0


def widget_delay(attempt: int) -> float:
    cap = BACKOFF_SOON if attempt < SOON_ATTEMPTS else BACKOFF_MAX
    base = min(cap, BACKOFF_MIN * 2**attempt)
    return base / 2 + random.random() * base / 2


@dataclass
class Widget:
    token: str
    conversation_id: int | None = None
    seq: int = 0
    ws: object = None
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    unacked: int = 0


@dataclass
class Spec:
    url: str  # ws://127.0.0.1:PORT
    workstream: str
    origin: str
    widgets: list[tuple[str, int | None, int]]  # (token, conversation_id, seq held)
    console_cookie: str | None = None  # this process also holds an agent's console
    console_url: str | None = None


class Client:
    def __init__(self, spec: Spec, pipe: Connection):
        self.spec = spec
        self.pipe = pipe
        self.widgets = [Widget(token, cid, seq) for token, cid, seq in spec.widgets]
        self.console = None
        self.sent = 0
        self.acked = 0
        self.latencies: list[int] = []  # ns, send to delivery on the agent's console
        self.stop_at = 0.0
        self.counting = False
        self.welcomes: list[float] = []  # perf_counter of each welcome
        self.dropped = 0  # handshakes the server accepted and then closed or failed unanswered
        self.refused = 0  # connections refused (no server listening)
        self.answered_no = 0  # handshakes answered with an HTTP error (e.g. 503 while busy)
        self.storm = False
        self.ids = itertools.count()
        self.reasons: collections.Counter[str] = collections.Counter()
        self.reopened = 0  # widgets that closed and connected again in the last churn

    def start_phase(self) -> None:
        self.sent = self.acked = 0
        self.latencies = []
        self.counting = True

    # Connections --------------------------------------------------------------------------------------

    async def connect(self, widget: Widget) -> None:
        """Connect and say hello until welcomed, retrying as the widget does (its backoff) when the
        handshake fails or the socket closes before the welcome (e.g. the server's hello deadline)."""
        attempt = 0
        while True:
            try:
                ws = await websockets.connect(
                    f"{self.spec.url}/ws/widget?workstream={self.spec.workstream}",
                    origin=self.spec.origin,
                    compression=None,
                    max_size=None,
                    ping_interval=None,
                    open_timeout=60,
                )
            except ConnectionRefusedError:
                self.refused += 1
            except websockets.InvalidStatus as error:
                self.answered_no += 1
                self.reasons[f"HTTP {error.response.status_code}"] += 1
            except (TimeoutError, OSError, websockets.InvalidHandshake, EOFError) as error:
                self.dropped += 1
                self.reasons[type(error).__name__] += 1
            else:
                hello = {"type": "hello", "token": widget.token}
                if widget.conversation_id is not None:
                    hello.update(conversation_id=widget.conversation_id, after=widget.seq)
                widget.ws = ws
                widget.welcomed.clear()
                reader = asyncio.get_running_loop().create_task(self.read_widget(widget, ws))
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(json.dumps(hello))
                await asyncio.wait(
                    [reader, asyncio.ensure_future(widget.welcomed.wait())], return_when=asyncio.FIRST_COMPLETED
                )
                if widget.welcomed.is_set():
                    return
                self.reasons[f"closed {ws.close_code} before the welcome"] += 1
            await asyncio.sleep(widget_delay(attempt))
            attempt += 1

    async def read_widget(self, widget: Widget, ws) -> None:
        try:
            async for text in ws:
                frame = json.loads(text)
                kind = frame["type"]
                if kind == "ack":
                    widget.conversation_id = frame["conversation_id"]
                    widget.seq = max(widget.seq, frame["seq"])
                    widget.unacked -= 1
                    if self.counting:
                        self.acked += 1
                    widget.acked.set()
                elif kind == "backlog" and not frame["more"]:
                    if self.storm:
                        self.welcomes.append(time.perf_counter())
                    widget.welcomed.set()
                elif kind == "error":
                    self.reasons[frame["code"]] += 1
                elif kind == "message":
                    message = frame["message"]
                    widget.conversation_id = message["conversation_id"]
                    widget.seq = max(widget.seq, message["seq"])
        except websockets.ConnectionClosed:
            pass
        if self.storm and widget.welcomed.is_set():
            # A restart: come back as the widget does (before the welcome, connect() tries again itself).
            widget.welcomed.clear()
            await asyncio.sleep(widget_delay(0))
            await self.connect(widget)

    async def open_console(self) -> None:
        self.console = await websockets.connect(
            self.spec.console_url,
            origin=self.spec.console_url.replace("ws://", "http://").rsplit("/console", 1)[0],
            additional_headers={"Cookie": self.spec.console_cookie},
            compression=None,
            max_size=None,
            ping_interval=None,
        )
        asyncio.get_running_loop().create_task(self.read_console())

    async def read_console(self) -> None:
        try:
            async for text in self.console:
                # Only messages are parsed: the agent's console gets every state change too.
                if '"type":"message"' not in text[:20]:
                    continue
                received = time.perf_counter_ns()
                body = json.loads(text)["message"]["body"]
                if body.startswith("t:"):
                    self.latencies.append(received - int(body[2:]))
        except websockets.ConnectionClosed:
            pass

    async def send(self, widget: Widget) -> None:
        self.sent += 1
        widget.unacked += 1
        body = f"t:{time.perf_counter_ns()}"
        await widget.ws.send(json.dumps({"type": "send", "client_id": f"{id(widget)}-{next(self.ids)}", "body": body}))

    # Phases -------------------------------------------------------------------------------------------

    async def open_all(self, limit: float = 600) -> None:
        """Every widget connected and welcomed; a RuntimeError saying how far it got after `limit` s."""
        try:
            async with asyncio.timeout(limit):
                await asyncio.gather(*(self.connect(w) for w in self.widgets))
                await asyncio.gather(*(w.welcomed.wait() for w in self.widgets))
        except TimeoutError:
            welcomed = sum(w.welcomed.is_set() for w in self.widgets)
            for w in self.widgets:
                if not w.welcomed.is_set():
                    state = "no socket" if w.ws is None else f"state {w.ws.state.name} close {w.ws.close_code}"
                    self.reasons[state] += 1
            raise RuntimeError(
                f"{welcomed} of {len(self.widgets)} widgets welcomed after {limit} s; handshakes dropped "
                f"{self.dropped}, refused {self.refused}, answered with an HTTP error {self.answered_no}; "
                f"{dict(self.reasons)}"
            ) from None
        if self.spec.console_url:
            await self.open_console()

    async def saturate(self, seconds: float, window: int) -> None:
        """Every widget keeps `window` sends unacknowledged for `seconds`."""

        async def keep_busy(widget: Widget) -> None:
            for _ in range(window):
                await self.send(widget)
            while time.perf_counter() < self.stop_at:
                widget.acked.clear()
                if widget.unacked < window:
                    await self.send(widget)
                else:
                    await widget.acked.wait()

        self.start_phase()
        self.stop_at = time.perf_counter() + seconds
        await asyncio.gather(*(keep_busy(w) for w in self.widgets))
        await self.drain()

    async def offer(self, seconds: float, rate: float) -> None:
        """`rate` messages/s from this process, round-robin over its widgets, whatever the answers."""
        self.start_phase()
        started = time.perf_counter()
        self.stop_at = started + seconds
        interval = 1 / rate
        while (now := time.perf_counter()) < self.stop_at:
            while self.sent < (now - started) / interval:
                await self.send(self.widgets[self.sent % len(self.widgets)])
            await asyncio.sleep(max(0.0, started + self.sent * interval - time.perf_counter()))
        await self.drain()

    async def drain(self, limit: float = 5.0) -> None:
        """Wait (at most `limit` s) until every send is acknowledged and, with a console, delivered."""
        deadline = time.perf_counter() + limit
        while time.perf_counter() < deadline:
            delivered = len(self.latencies) >= self.sent if self.console else True
            if delivered and all(w.unacked <= 0 for w in self.widgets):
                break
            await asyncio.sleep(0.01)
        self.counting = False

    async def churn(self, rate: float, seconds: float) -> None:
        """Customers come and go: `rate` times a second a widget closes its socket and connects again, as
        a customer moving to another page does, each widget in turn. Reports how many came back."""
        stop = time.perf_counter() + seconds
        turns = itertools.cycle(self.widgets)
        reopening: set[asyncio.Task] = set()
        self.reopened = 0
        while time.perf_counter() < stop:
            task = asyncio.get_running_loop().create_task(self.reopen(next(turns)))
            reopening.add(task)
            task.add_done_callback(reopening.discard)
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*reopening)

    async def reopen(self, widget: Widget) -> None:
        if widget.ws is not None:
            await widget.ws.close()
        await self.connect(widget)
        self.reopened += 1

    async def close_all(self) -> None:
        self.storm = False
        for widget in self.widgets:
            if widget.ws is not None:
                await widget.ws.close()
        if self.console is not None:
            await self.console.close()

    def results(self) -> dict:
        return {
            "sent": self.sent,
            "acked": self.acked,
            "delivered": len(self.latencies),
            "latencies_ns": self.latencies,
            "welcomes": self.welcomes,
            "dropped": self.dropped,
            "refused": self.refused,
            "answered_no": self.answered_no,
            "reopened": self.reopened,
            "reasons": dict(self.reasons),
            "cpu": time.process_time(),
            "cursors": [(w.conversation_id, w.seq) for w in self.widgets],
        }

    async def serve(self) -> None:
        """Commands from the parent: each answered with ("ok", results) when done."""
        loop = asyncio.get_running_loop()
        while True:
            command, args = await loop.run_in_executor(None, self.pipe.recv)
            if command == "open":
                await self.open_all()
                # What a client opened lives until it closes: its collector need not walk it again. A
                # full walk over 5,000 sockets took a core for half a second, from the server it measures.
                gc.freeze()
            elif command == "saturate":
                await self.saturate(*args)
            elif command == "offer":
                await self.offer(*args)
            elif command == "churn":
                await self.churn(*args)
            elif command == "once":
                self.start_phase()
                await asyncio.gather(*(self.send(w) for w in self.widgets))
                await self.drain(120)
            elif command == "storm":
                # From now on a closed socket is a restart to come back from, as a widget would.
                self.storm = True
                self.welcomes.clear()
            elif command == "wait_welcomed":
                deadline = time.perf_counter() + args[0]
                while time.perf_counter() < deadline and not all(w.welcomed.is_set() for w in self.widgets):
                    await asyncio.sleep(0.05)
                self.storm = False
            elif command == "close":
                await self.close_all()
                self.pipe.send(("ok", self.results()))
                return
            self.pipe.send(("ok", self.results()))


def main(spec: Spec, pipe: Connection) -> None:
    uvloop.install()
    asyncio.run(Client(spec, pipe).serve())
