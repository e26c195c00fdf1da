"""A small fixed-window rate limit for the endpoints anyone on the internet may call without a token.

Counters live in the process: with several processes each allows the limit, which still bounds abuse
to a known multiple. Behind a reverse proxy, run Werkzeug's ProxyFix so the client address is real.
"""

import threading
import time

from .errors import ChatError


class FixedWindow:
    def __init__(self, limit: int, seconds: float):
        self.limit = limit
        self.seconds = seconds
        self._lock = threading.Lock()
        self._window = 0
        self._counts: dict[str, int] = {}

    def hit(self, key: str, now: float | None = None) -> None:
        """Count one request for `key`; refuse it with 429 once the window's limit is used up."""
        window = int((time.monotonic() if now is None else now) // self.seconds)
        with self._lock:
            if window != self._window:
                # A new window: the old counts are dropped wholesale, so memory stays bounded.
                self._window, self._counts = window, {}
            count = self._counts.get(key, 0) + 1
            self._counts[key] = count
        if count > self.limit:
            raise ChatError(
                429, "rate_limited", f"Too many requests: at most {self.limit} per {int(self.seconds)} s; try later."
            )
