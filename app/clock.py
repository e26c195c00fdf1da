"""The one source of time, so tests can move it (the timers depend on that)."""

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path


def _system_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    """Current time as a naive UTC datetime, the form every column stores."""
    return _now()


def set_source(source: Callable[[], datetime] | None) -> None:
    global _now
    _now = source or _system_now


def use_offset_file(path: str) -> None:
    """Test deployments only (PERSISTENT_CHAT_CLOCK_OFFSET_FILE): now() runs ahead by the number of
    seconds in the file, so a browser test can let a day pass for a running server."""
    state = {"mtime": None, "offset": 0.0}

    def shifted() -> datetime:
        try:
            mtime = os.stat(path).st_mtime_ns
            if mtime != state["mtime"]:
                state["mtime"], state["offset"] = mtime, float(Path(path).read_text().strip() or 0)
        except (OSError, ValueError):
            state["offset"] = 0.0
        return _system_now() + timedelta(seconds=state["offset"])

    set_source(shifted)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"
