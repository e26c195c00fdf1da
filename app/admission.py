"""Admission: who may open a widget socket and keep it, so that no anonymous client can use up the
process's connections (gunicorn's --worker-connections) and stall HTTP for everyone.

- At the handshake, refused as plain HTTP before anything is upgraded: more than HANDSHAKES_PER_ADDRESS
  from one client address (`429 rate_limited`, shared through Redis), SOCKETS_BEFORE_HELLO_PER_ADDRESS
  sockets of that address still anonymous, that is without a hello whose token verified (`429
  too_many_connections`), or SOCKETS_BEFORE_HELLO of them in this process. Past that quota a handshake
  waits in line, before Flask sees it, for up to HANDSHAKE_LINE_SECONDS until a place frees; with
  HANDSHAKES_IN_LINE already waiting, or when its wait runs out, it is answered `503
  too_many_connections`.
- A socket says hello within HELLO_TIMEOUT_SECONDS or is closed (1008 `hello_timeout`).
- At hello: at most SOCKETS_PER_ADDRESS signed-in sockets per client address and SOCKETS_PER_CUSTOMER
  per customer (error frame `too_many_connections`, then 1008).
- On PostgreSQL, at most HELLOS_AT_ONCE hellos of the process use the database at a time; the others
  wait their turn, holding no connection, for up to HELLO_QUEUE_SECONDS (then `database_busy`).

Open sockets are counted per process: a socket lives in one process, and that process's connections
are what the caps protect. With N processes behind a balancer an address may hold N times the cap.
"""

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, request

from . import attachments, rates, security_headers
from .errors import Busy, ChatError


class Admission:
    """The process's open widget sockets: those still owing a hello, and the signed-in ones by client
    address and by customer."""

    def __init__(self, hellos_at_once: int):
        self._lock = threading.Lock()
        self.hellos = threading.BoundedSemaphore(hellos_at_once) if hellos_at_once > 0 else None
        self.waiting = 0
        self.waiting_by_address: Counter[str] = Counter()
        self.by_address: Counter[str] = Counter()
        self.by_customer: Counter[int] = Counter()
        # Handshakes waiting for a place below the quota (see `wait_for_room`).
        self.in_line = 0
        self._room = threading.Condition(self._lock)

    def stops_waiting(self, address: str) -> None:
        """Called with the lock held."""
        self.waiting -= 1
        self.waiting_by_address[address] -= 1
        if self.waiting_by_address[address] <= 0:
            del self.waiting_by_address[address]
        self._room.notify()

    def wait_for_room(self, quota: int, line: int, seconds: float) -> bool:
        """Whether fewer than `quota` sockets owe a hello, now or, waiting in a line of at most `line`,
        within `seconds`. The wait costs no CPU, where a refusal costs a retry: in a herd after a
        restart the widgets refused came back on their backoff so often that refusing them took a third
        of the process's CPU. admit() checks again: a place may be taken before the one woken gets it."""
        with self._lock:
            if self.waiting < quota:
                return True
            if self.in_line >= line:
                return False
            self.in_line += 1
            try:
                return self._room.wait_for(lambda: self.waiting < quota, timeout=seconds)
            finally:
                self.in_line -= 1


class Ticket:
    """One socket's place in the counts, from its handshake until it closes."""

    def __init__(self, admission: Admission, address: str):
        self._admission = admission
        self.address = address
        self.customer_id: int | None = None
        self._open = True
        self._anonymous = True

    def verified(self) -> None:
        """The socket has shown a valid token: it leaves the anonymous ones that SOCKETS_BEFORE_HELLO
        caps. In a herd after a restart it may wait a while for its turn at the database (hello_turn);
        counted as anonymous, the herd's own queue would refuse the rest of the herd at the handshake,
        and their retries would take the CPU the queue needs."""
        with self._admission._lock:
            self._leave_anonymous()

    def _leave_anonymous(self) -> None:
        """Called with the lock held."""
        if self._anonymous:
            self._anonymous = False
            self._admission.stops_waiting(self.address)

    def said_hello(self, customer_id: int) -> None:
        admission = self._admission
        config = current_app.config
        with admission._lock:
            if admission.by_address[self.address] >= config["SOCKETS_PER_ADDRESS"]:
                raise ChatError(429, "too_many_connections", "Too many open chats from this network.")
            if admission.by_customer[customer_id] >= config["SOCKETS_PER_CUSTOMER"]:
                raise ChatError(429, "too_many_connections", "Too many open chat windows; close one and reload.")
            self._leave_anonymous()
            admission.by_address[self.address] += 1
            admission.by_customer[customer_id] += 1
            self.customer_id = customer_id

    def release(self) -> None:
        admission = self._admission
        with admission._lock:
            if not self._open:
                return
            self._open = False
            self._leave_anonymous()
            if self.customer_id is None:
                return
            for counter, item in ((admission.by_address, self.address), (admission.by_customer, self.customer_id)):
                counter[item] -= 1
                if counter[item] <= 0:
                    del counter[item]


WIDGET_SOCKET_PATH = "/ws/widget"
WSGIApplication = Callable[[dict, Callable], Iterable[bytes]]


@rates.limiter.request_filter
def _counted_by_admit() -> bool:
    """admit() counts a widget socket's handshakes, and no decorator's limit applies to them: Flask-Limiter
    finding that out for every handshake cost a twentieth of a worker busy with customers coming and
    going."""
    return request.path == WIDGET_SOCKET_PATH


def _full() -> ChatError:
    # A new one each time: a raised exception keeps the frames it was raised from.
    return ChatError(503, "too_many_connections", "The chat is busy; try again shortly.")


def init_app(app: Flask) -> None:
    admission = app.extensions["admission"] = Admission(app.config.get("HELLOS_AT_ONCE", 0))
    app.wsgi_app = _shedding(app, admission, app.wsgi_app)

    @app.teardown_request
    def release_ticket(_error: BaseException | None) -> None:
        # Whatever ended the socket (a refused handshake, a close, a crash), its place is given back.
        ticket = g.pop("socket_ticket", None)
        if ticket is not None:
            ticket.release()


def _shedding(app: Flask, admission: Admission, wsgi_app: WSGIApplication) -> WSGIApplication:
    """While SOCKETS_BEFORE_HELLO sockets wait for their hello, a widget socket's handshake waits in line
    for a place or is refused, before Flask sees it. A herd of widgets reconnecting after a restart is
    mostly such handshakes, and through Flask's request, hooks and error handler each refusal cost most
    of a millisecond of the CPU the welcomes need. admit() checks again under its lock."""
    body = json.dumps(_full().body()).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *security_headers.HEADERS]

    def shed(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == WIDGET_SOCKET_PATH and not admission.wait_for_room(
            app.config["SOCKETS_BEFORE_HELLO"], app.config["HANDSHAKES_IN_LINE"], app.config["HANDSHAKE_LINE_SECONDS"]
        ):
            start_response("503 SERVICE UNAVAILABLE", headers)
            return [body]
        return wsgi_app(environ, start_response)

    return shed


def admit() -> Ticket:
    """Let a widget socket's handshake through, or refuse it cheaply before it is upgraded."""
    address = request.remote_addr or ""
    rates.hit("HANDSHAKES_PER_ADDRESS", "handshake", address)
    admission: Admission = current_app.extensions["admission"]
    with admission._lock:
        if admission.waiting_by_address[address] >= current_app.config["SOCKETS_BEFORE_HELLO_PER_ADDRESS"]:
            raise ChatError(429, "too_many_connections", "Too many chats from this network are still connecting.")
        if admission.waiting >= current_app.config["SOCKETS_BEFORE_HELLO"]:
            raise _full()
        admission.waiting += 1
        admission.waiting_by_address[address] += 1
    g.socket_ticket = Ticket(admission, address)
    return g.socket_ticket


def verified() -> None:
    """This request's socket has shown a valid customer token (see Ticket.verified)."""
    g.socket_ticket.verified()


def said_hello(customer_id: int) -> None:
    """This request's socket has authenticated as `customer_id`: it leaves the waiting ones, within
    the caps per address and per customer (ChatError `too_many_connections` when over)."""
    g.socket_ticket.said_hello(customer_id)


@contextmanager
def hello_turn() -> Iterator[None]:
    """A hello's turn at the database. A herd of widgets reconnecting after a restart would otherwise
    take every pooled connection at once, each held while its greenlet waits behind thousands of
    others for the CPU; past DATABASE_POOL_TIMEOUT most are refused, come back and queue again, and
    the herd never drains. Waiting here holds no connection, so the herd is welcomed in order at the
    pool's pace. SQLite needs no turns: its statements never yield."""
    hellos = current_app.extensions["admission"].hellos
    if hellos is None:
        yield
        return
    if not hellos.acquire(timeout=current_app.config["HELLO_QUEUE_SECONDS"]):
        raise Busy()
    try:
        yield
    finally:
        hellos.release()


def read_body_first() -> None:
    """Read a request's whole body before anything touches the database. On SQLite every transaction
    takes the write lock (BEGIN IMMEDIATE), and loading the signed-in agent opens one: a client that
    sent half a body and waited would otherwise hold that lock for everyone."""
    # Uploads stream theirs, with no transaction open (attachments.upload).
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not attachments.is_streamed():
        request.get_data(cache=True)
