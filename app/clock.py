"""The one source of time, so tests can move it (issue 4's timers depend on that)."""

from collections.abc import Callable
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_now: Callable[[], datetime] = _system_now


def now() -> datetime:
    """Current time as a naive UTC datetime, the form every column stores."""
    return _now()


def set_source(source: Callable[[], datetime] | None) -> None:
    global _now
    _now = source or _system_now


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"
