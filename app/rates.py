"""Rate limits: how often a customer, a client address or a socket may do something.

Limits that belong to an HTTP route are Flask-Limiter decorators; the ones HTTP and the websocket share
(messages, new conversations) and those with no request around them (typing, frames) call `hit` and
`allow`. All count moving windows: with REDIS_URL in Redis, through Flask-Limiter's `limits` (so every
process of a deployment shares the counts), and otherwise in this process (`Windows`). Each limit is a
setting (config.py) read when it is used, in Flask-Limiter's notation ("20/minute").

Counting may wait (a Redis round trip), so nobody counts inside a database transaction: on SQLite an
open one is the write lock, and a greenlet waiting while it holds it makes every other writer of the
deployment wait too.

Per-socket frame limits live in the process: a socket is served by one process, and counting its frames
in Redis would add a round trip to every frame.
"""

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache

from flask import Flask, current_app, jsonify, render_template, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from sqlalchemy import make_url

from . import realtime
from .errors import ChatError
from .extensions import db

log = logging.getLogger(__name__)

limiter = Limiter(key_func=get_remote_address)
FALLBACK_SECONDS = 5.0
_shared_down_until = 0.0


@lru_cache(maxsize=64)
def _items(limits: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limits))


class Windows:
    """Moving windows counted in this process: for each key and limit, the times of its latest hits.

    limits' MemoryStorage (what Flask-Limiter counts in without Redis) sweeps every key it holds from a
    timer thread every 10 ms while anything is counted; with a key per socket and per customer that
    sweep took a quarter of a busy worker's CPU. Here a hit costs a deque append, and keys whose window
    has passed are dropped by an occasional sweep."""

    SWEEP_SECONDS = 60.0

    def __init__(self) -> None:
        self._hits: dict[tuple[str, RateLimitItem], deque[float]] = {}
        self._swept = time.monotonic()

    def take(self, limits: str, key: str) -> float | None:
        """Count one use against every limit in `limits`; None when allowed, else the seconds until the
        exhausted one allows again (and nothing is counted)."""
        now = time.monotonic()
        if now - self._swept > self.SWEEP_SECONDS:
            self._sweep(now)
        windows = []
        for item in _items(limits):
            hits = self._hits.get((key, item))
            if hits is None:
                hits = self._hits[(key, item)] = deque(maxlen=item.amount)
            if len(hits) == item.amount and hits[0] > now - item.get_expiry():
                return hits[0] + item.get_expiry() - now
            windows.append(hits)
        for hits in windows:
            hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        self._swept = now
        for (key, item), hits in list(self._hits.items()):
            if not hits or hits[-1] <= now - item.get_expiry():
                del self._hits[(key, item)]


# Counts of this process alone: everything when there is no Redis, and the shared counts while Redis fails.
_local = Windows()


class RateLimited(ChatError):
    """A refusal that says when to try again: `retry_after` seconds in the body, the frame and the
    Retry-After header."""

    def __init__(self, retry_after: float, message: str = "Too many requests; try again later."):
        super().__init__(429, "rate_limited", message)
        self.retry_after = round(max(retry_after, 0.01), 2)

    def body(self) -> dict:
        body = super().body()
        body["error"]["retry_after"] = self.retry_after
        return body

    def frame(self, **extra) -> dict:
        return super().frame(retry_after=self.retry_after, **extra)

    def response(self):
        return jsonify(self.body()), 429, {"Retry-After": str(math.ceil(self.retry_after))}


def init_app(app: Flask) -> None:
    for name in SETTINGS:
        parse_many(app.config[name])  # a malformed setting fails at start, not on the first request
    # Deployments (and test runs) sharing one Redis keep their counts apart, like their event channels.
    app.config.setdefault(
        "RATE_LIMIT_PREFIX",
        app.config.get("REDIS_CHANNEL_PREFIX")
        or f"persistent-chat:{make_url(app.config['SQLALCHEMY_DATABASE_URI']).database}:",
    )
    limiter.init_app(app)

    @app.after_request
    def end_transaction(response):
        # Registered after Flask-Limiter's own, so it runs before it: the sign-in's failure count is
        # taken there, and the request's transaction must be over by then. The route has committed what
        # it keeps; a rollback ends the transaction and gives the connection back, like the teardown.
        db.session.rollback()
        return response

    @app.errorhandler(RateLimited)
    def rate_limited(error: RateLimited):
        return error.response()

    @app.errorhandler(RateLimitExceeded)
    def limit_exceeded(_error: RateLimitExceeded):
        current = limiter.current_limit
        refusal = RateLimited(current.reset_at - time.time() if current else 1)
        if request.endpoint == "console.login":
            # A person at the sign-in form gets the form again, with the wait in words.
            page = render_template(
                "console/login.html",
                error=f"Too many failed sign-ins; try again in {math.ceil(refusal.retry_after)} seconds.",
                next=request.values.get("next"),
            )
            return page, 429, {"Retry-After": str(math.ceil(refusal.retry_after))}
        return refusal.response()


SETTINGS = (
    "HANDSHAKES_PER_ADDRESS",
    "MESSAGES_PER_CUSTOMER",
    "CONVERSATIONS_PER_CUSTOMER",
    "FRAMES_PER_SOCKET",
    "TYPING_PER_CUSTOMER",
    "REFUSALS_PER_SOCKET",
    "VISITOR_TOKENS_PER_ADDRESS",
    "WIDGET_REQUESTS_PER_ADDRESS",
    "LOGIN_FAILURES_PER_ACCOUNT",
    "LOGIN_FAILURES_PER_ADDRESS",
)


def key(*parts: object) -> str:
    """A limit's key in this deployment: the same customer id in another deployment is someone else."""
    return current_app.config["RATE_LIMIT_PREFIX"] + ":".join(str(part) for part in parts)


def setting(name: str) -> Callable[[], str]:
    """A decorator's limit, read from the settings on every request."""
    return lambda: current_app.config[name]


def _take_shared(name: str, identifier: str) -> float | None:
    """Count one use of setting `name` by `identifier`: in Redis when the deployment has it (every process
    shares the counts), else in this process."""
    global _shared_down_until
    limits = current_app.config[name]
    if current_app.config["RATELIMIT_STORAGE_URI"].startswith("memory") or time.monotonic() < _shared_down_until:
        return _local.take(limits, identifier)
    try:
        strategy = limiter.limiter
        for item in _items(limits):
            if not strategy.hit(item, name, identifier):
                reset_at, _remaining = strategy.get_window_stats(item, name, identifier)
                return reset_at - time.time()
        return None
    except Exception as error:
        _shared_down_until = time.monotonic() + FALLBACK_SECONDS
        log.warning("rate limit storage failed (%s): counting in this process for %.0f s", error, FALLBACK_SECONDS)
        return _local.take(limits, identifier)


def hit(name: str, *parts: object) -> None:
    """Count one use of the limit `name` (a setting) by `parts` (e.g. a customer id), shared by every
    process of the deployment; raise RateLimited when it is used up (that use is not counted)."""
    wait = _take_shared(name, key(*parts))
    if wait is not None:
        raise RateLimited(wait)


def allow(name: str, *parts: object) -> bool:
    """Like `hit`, for what is dropped silently when it comes too often (typing indicators)."""
    return _take_shared(name, key(*parts)) is None


class SocketRates:
    """One socket's frame budget. A frame past FRAMES_PER_SOCKET is refused with `rate_limited`; a
    socket refused more than REFUSALS_PER_SOCKET times is not slowing down and is closed (1008). Counted
    on the socket itself: it is served by one process, and its counts go when it does."""

    def __init__(self) -> None:
        self._windows = Windows()
        config = current_app.config
        self._frames, self._refusals = config["FRAMES_PER_SOCKET"], config["REFUSALS_PER_SOCKET"]

    def guard(self, handle: Callable[[dict], None]) -> Callable[[dict], None]:
        def guarded(frame: dict) -> None:
            try:
                wait = self._windows.take(self._frames, "frames")
                if wait is not None:
                    raise RateLimited(wait, "Too many frames; slow down.")
                handle(frame)
            except RateLimited as refusal:
                realtime.release_session()
                if self._windows.take(self._refusals, "refusals") is not None:
                    client_id = frame.get("client_id")
                    last = refusal.frame(**({"client_id": client_id} if isinstance(client_id, str) else {}))
                    raise realtime.Close(realtime.CLOSE_POLICY, "rate_limited", last) from refusal
                raise

        return guarded
