"""Operating hours and holidays as pure functions of a calendar and an instant.

Instants in and out are naive UTC datetimes, like every stored column. A local interval on a local date is
mapped to UTC by one rule, used for starts and ends alike: a local wall time becomes the earliest instant
whose local wall time is at or after it. That makes a time in a spring-forward gap the first instant after
the gap, an ambiguous fall-back time its first occurrence (fold=0), and "24:00" the next local midnight.
An interval is then the half-open UTC range [start, end), so on a DST day "08:00-16:00" is eight wall-clock
hours at that day's offsets, and an interval ending at an ambiguous time closes at its first occurrence.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import ChatError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS_PER_DAY = 10
MAX_HOLIDAYS = 366
_HORIZON_DAYS = 400
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Interval = tuple[int, int]


@dataclass(frozen=True)
class Calendar:
    timezone: str
    weekly: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date]

    def __post_init__(self) -> None:
        # The walkers below rely on sorted, disjoint intervals; a hand-built calendar that breaks that would
        # give wrong answers silently, so refuse it here (parse() reports the same problems field by field).
        if len(self.weekly) != 7:
            raise ValueError("weekly needs 7 days, Monday first")
        for day in self.weekly:
            previous_end = 0
            for start, end in day:
                if not (previous_end <= start < end <= 1440):
                    raise ValueError(f"bad or unsorted interval {(start, end)!r} in {day!r}")
                previous_end = end


ALWAYS_OPEN = Calendar("UTC", (((0, 1440),),) * 7, frozenset())


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_hours", message)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@cache
def _zone_names() -> frozenset[str]:
    # available_timezones() walks the tz database on disk (tens of ms) and parse() runs on every routing
    # decision; it also rejects paths such as "posix/..." and, on case-insensitive filesystems, miscased
    # names that ZoneInfo() would accept.
    return frozenset(available_timezones())


def _zone(name: str) -> tzinfo:
    # UTC (and so ALWAYS_OPEN, the default for every workstream) must work even without a tz database.
    return UTC if name == "UTC" else ZoneInfo(name)


def _minute(value: object, field: str, *, end: bool) -> int:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(f"{field} must be a time written HH:MM, got {_show(value)}.")
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not end)):
        allowed = "00:00 to 24:00" if end else "00:00 to 23:59"
        raise _invalid(f"{field} must be a time from {allowed}, got {_show(value)}.")
    return hour * 60 + minute


def _day(name: str, value: object) -> tuple[Interval, ...]:
    field = f"weekly.{name}"
    if not isinstance(value, list | tuple):
        raise _invalid(f"{field} must be a list of [start, end] pairs, got {_show(value)}.")
    if len(value) > MAX_INTERVALS_PER_DAY:
        raise _invalid(f"{field} has {len(value)} intervals; at most {MAX_INTERVALS_PER_DAY} are allowed.")
    intervals = []
    for index, pair in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise _invalid(f"{where} must be a [start, end] pair, got {_show(pair)}.")
        start = _minute(pair[0], f"{where} start", end=False)
        stop = _minute(pair[1], f"{where} end", end=True)
        if start >= stop:
            raise _invalid(f"{where} must start before it ends, got {pair[0]}-{pair[1]}.")
        intervals.append((start, stop))
    intervals.sort()
    for (_, previous_end), (start, stop) in zip(intervals, intervals[1:], strict=False):
        if start < previous_end:
            clash = f"{_hhmm(start)}-{_hhmm(stop)} starts before an earlier one ends at {_hhmm(previous_end)}"
            raise _invalid(f"{field} has overlapping intervals: {clash}.")
    return tuple(intervals)


def _holidays(value: object) -> frozenset[date]:
    if not isinstance(value, list | tuple):
        raise _invalid(f"holidays must be a list of YYYY-MM-DD dates, got {_show(value)}.")
    if len(value) > MAX_HOLIDAYS:
        raise _invalid(f"holidays has {len(value)} dates; at most {MAX_HOLIDAYS} are allowed.")
    days = set()
    for index, text in enumerate(value):
        # date.fromisoformat alone would also take "20261224" and "2026-W52-4".
        try:
            if not isinstance(text, str) or not _DATE.fullmatch(text):
                raise ValueError
            days.add(date.fromisoformat(text))
        except ValueError:
            raise _invalid(f"holidays[{index}] must be a date written YYYY-MM-DD, got {_show(text)}.") from None
    return frozenset(days)


def parse(spec: object) -> Calendar:
    """Read the JSON a workstream stores; None or {} means always open."""
    if spec is None or spec == {}:
        return ALWAYS_OPEN
    if not isinstance(spec, dict):
        raise _invalid(f"hours must be an object with timezone, weekly and holidays, got {_show(spec)}.")
    unknown = sorted(str(key) for key in spec.keys() - {"timezone", "weekly", "holidays"})
    if unknown:
        raise _invalid(f"hours has unknown field(s) {', '.join(unknown)}; expected timezone, weekly, holidays.")
    # Both are required so that a typo or an omission cannot silently produce a never-open workstream.
    for required in ("timezone", "weekly"):
        if required not in spec:
            raise _invalid(f"hours needs {required}.")
    timezone = spec["timezone"]
    if not isinstance(timezone, str) or not (timezone == "UTC" or timezone in _zone_names()):
        raise _invalid(f"timezone must be an IANA time zone name such as Europe/Helsinki, got {_show(timezone)}.")
    weekly = spec["weekly"]
    if not isinstance(weekly, dict):
        raise _invalid(f"weekly must be an object keyed by mon..sun, got {_show(weekly)}.")
    unknown_days = sorted(str(key) for key in weekly.keys() - set(DAY_NAMES))
    if unknown_days:
        raise _invalid(f"weekly has unknown day(s) {', '.join(unknown_days)}; use {', '.join(DAY_NAMES)}.")
    return Calendar(
        timezone=timezone,
        weekly=tuple(_day(name, weekly.get(name, [])) for name in DAY_NAMES),
        holidays=_holidays(spec.get("holidays", [])),
    )


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def to_spec(calendar: Calendar) -> dict:
    """The inverse of parse(): every day is listed (closed days as []) and holidays are sorted."""
    return {
        "timezone": calendar.timezone,
        "weekly": {
            name: [[_hhmm(start), _hhmm(end)] for start, end in calendar.weekly[index]]
            for index, name in enumerate(DAY_NAMES)
        },
        "holidays": sorted(day.isoformat() for day in calendar.holidays),
    }


def _require_naive(instant: datetime) -> None:
    if instant.tzinfo is not None:
        raise ValueError(f"instants are naive UTC datetimes, got an aware one: {instant!r}")


def _wall(instant: datetime, zone: tzinfo) -> datetime:
    return instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)


def _to_utc(wall: datetime, zone: tzinfo) -> datetime:
    """The earliest instant whose local wall time is at or after `wall`."""
    # fold=0 gives the first occurrence of an ambiguous time; inside a gap it uses the offset from before the
    # transition, which lands after the gap but not on its first instant.
    after = wall.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)
    if _wall(after, zone) == wall:
        return after
    # A gap: fold=1 uses the offset from after the transition and lands before it. Search the seconds in
    # between for the transition; gaps are rare and the search is a few dozen steps even for a skipped day.
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC).replace(tzinfo=None)
    low, high = 0, int((after - before).total_seconds())
    while low < high:
        middle = (low + high) // 2
        if _wall(before + timedelta(seconds=middle), zone) >= wall:
            high = middle
        else:
            low = middle + 1
    return before + timedelta(seconds=low)


def _day_periods(calendar: Calendar, zone: tzinfo, day: date) -> Iterator[tuple[datetime, datetime]]:
    if day in calendar.holidays:
        return
    midnight = datetime(day.year, day.month, day.day)
    for start, end in calendar.weekly[day.weekday()]:
        opens = _to_utc(midnight + timedelta(minutes=start), zone)
        closes = _to_utc(midnight + timedelta(minutes=end), zone)
        if opens < closes:  # an interval wholly inside a spring-forward gap never happens
            yield opens, closes


def _periods(calendar: Calendar, instant: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Open UTC periods in time order, from the local date of `instant` to past the horizon."""
    zone = _zone(calendar.timezone)
    today = _wall(instant, zone).date()
    # Earlier dates close by local midnight, which is not after `instant`. The extra days past the horizon
    # allow for the offset then differing from the offset now.
    for offset in range(_HORIZON_DAYS + 3):
        yield from _day_periods(calendar, zone, today + timedelta(days=offset))


def _merged(periods: Iterable[tuple[datetime, datetime]]) -> Iterator[tuple[datetime, datetime]]:
    # Touching periods (an interval ending at 24:00 and the next day's starting at 00:00) are one open spell.
    current = None
    for opens, closes in periods:
        if current is not None and opens <= current[1]:
            current = (current[0], max(current[1], closes))
            continue
        if current is not None:
            yield current
        current = (opens, closes)
    if current is not None:
        yield current


def is_open(calendar: Calendar, instant: datetime) -> bool:
    _require_naive(instant)
    zone = _zone(calendar.timezone)
    today = _wall(instant, zone).date()
    # Tomorrow too: where clocks fell back across midnight (St. John's and Goose Bay at 00:01 until 2010) the
    # repeated late evening comes after the next date's first midnight, so it belongs to the next date.
    return any(
        opens <= instant < closes
        for offset in (0, 1)
        for opens, closes in _day_periods(calendar, zone, today + timedelta(days=offset))
    )


def is_holiday(calendar: Calendar, instant: datetime) -> bool:
    """Whether `instant` falls on one of the calendar's holidays, in the calendar's own time zone."""
    _require_naive(instant)
    return _wall(instant, _zone(calendar.timezone)).date() in calendar.holidays


def next_opening(calendar: Calendar, instant: datetime) -> datetime | None:
    """The first instant at or after `instant` that is open (`instant` itself if open); None beyond 400 days."""
    _require_naive(instant)
    horizon = instant + timedelta(days=_HORIZON_DAYS)
    for opens, closes in _periods(calendar, instant):
        if closes > instant:
            first = max(opens, instant)
            return first if first <= horizon else None
    return None


def next_change(calendar: Calendar, instant: datetime) -> datetime | None:
    """The first instant after `instant` at which is_open flips; None if it does not within 400 days."""
    _require_naive(instant)
    horizon = instant + timedelta(days=_HORIZON_DAYS)
    for opens, closes in _merged(_periods(calendar, instant)):
        if closes > instant:
            change = opens if opens > instant else closes
            # A spell still open at the end of the walk ends past the horizon, so None is right for it too.
            return change if change <= horizon else None
    return None
