"""Turning the admin pages' form fields into the data the domain functions take, and their refusals back
into a message beside the field they are about."""

import re

from werkzeug.datastructures import MultiDict

from .. import hours
from ..errors import ChatError

_INTEGER = re.compile(r"[0-9]{1,9}")
_INTERVAL = re.compile(r"\s*([0-9]{1,2}:[0-9]{2})\s*[-–]\s*([0-9]{1,2}:[0-9]{2})\s*")


def integer(value: str | None) -> object:
    """A form's number: an int when it is one; blank is None; anything else stays text, for the domain
    function to refuse with its own message."""
    value = (value or "").strip()
    if not value:
        return None
    return int(value) if _INTEGER.fullmatch(value) else value


def text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def lines(value: str | None) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,]", value or "") if line.strip()]


class FieldError(ChatError):
    """A refusal that already knows its field."""

    def __init__(self, field: str, message: str, code: str = "invalid_request"):
        super().__init__(400, code, message)
        self.field = field


def error_field(error: ChatError, fields: list[str], aliases: dict[str, tuple[str, ...]] | None = None) -> str:
    """The form field a refusal is about: one it names (the longest name first, so `wrap_up_seconds`
    is not taken for `wrap_up`), else one of its aliases' words, else the form as a whole."""
    if isinstance(error, FieldError):
        return error.field
    for field in sorted(fields, key=len, reverse=True):
        if re.search(rf"\b{re.escape(field)}\b", error.message):
            return field
    for field, words in (aliases or {}).items():
        if any(word in error.message for word in words):
            return field
    return "_form"


def hours_spec(form: MultiDict) -> dict | None:
    """The hours editor's fields (always open, time zone, one line of intervals per day, holidays) as
    the JSON hours.parse() reads."""
    if form.get("always_open"):
        return None
    weekly = {}
    for day in hours.DAY_NAMES:
        raw = (form.get(f"day_{day}") or "").strip()
        intervals = []
        for part in filter(None, (p.strip() for p in raw.split(","))):
            match = _INTERVAL.fullmatch(part)
            if not match:
                raise FieldError(f"day_{day}", f"{part!r}: write each interval as 08:00-16:00, separated by commas.")
            start, end = (t.zfill(5) for t in match.groups())
            intervals.append([start, end])
        weekly[day] = intervals
    return {"timezone": (form.get("timezone") or "").strip(), "weekly": weekly, "holidays": lines(form.get("holidays"))}


def hours_fields(spec: dict | None) -> dict:
    """The editor's field values for stored hours."""
    if not spec:
        return {"always_open": True, "timezone": "UTC", "holidays": "", **{f"day_{d}": "" for d in hours.DAY_NAMES}}
    weekly = spec.get("weekly", {})
    return {
        "always_open": False,
        "timezone": spec.get("timezone", "UTC"),
        "holidays": "\n".join(spec.get("holidays", [])),
        **{f"day_{d}": ", ".join(f"{s}-{e}" for s, e in weekly.get(d, [])) for d in hours.DAY_NAMES},
    }


# The languages the widget and the automated messages speak, by name, for pickers.
LANGUAGE_NAMES = {"en": "English", "fi": "Finnish"}


def language_options(*stored: str | None) -> list[tuple[str, str]]:
    """The choice of any language, the languages we speak, and any other language a stored text is in."""
    codes = list(LANGUAGE_NAMES) + sorted({s for s in stored if s and s not in LANGUAGE_NAMES})
    return [("", "Any language")] + [(code, LANGUAGE_NAMES.get(code, code)) for code in codes]
