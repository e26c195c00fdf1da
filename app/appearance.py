"""How a workstream's widget looks: its accent colour (with a text colour that reads on it), which side
its launcher sits on, and per language a title, a greeting shown in the empty panel and an optional
"usually replies within …" line. The widget reads it from `welcome`, so a change shows on its next load."""

import json
import re

from . import checked
from .errors import ChatError
from .models import Workstream

DEFAULT_ACCENT = "#2458d6"
POSITIONS = ("right", "left")
LANGUAGES = ("en", "fi")
TEXT_FIELDS = {"title": 60, "greeting": 500, "reply_time": 120}
# WCAG 2.1 AA for normal text: the accent carries the launcher's icon and the customer's own messages.
MIN_CONTRAST = 4.5
LIGHT_TEXT, DARK_TEXT = "#ffffff", "#111111"
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_appearance", message)


def _luminance(colour: str) -> float:
    """WCAG relative luminance of #rrggbb."""

    def channel(part: str) -> float:
        c = int(part, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_colour(accent: str) -> tuple[str, float]:
    """The text colour that reads best on `accent`, with its contrast ratio."""
    return max(((c, contrast(accent, c)) for c in (LIGHT_TEXT, DARK_TEXT)), key=lambda pair: pair[1])


def is_colour(value: object) -> bool:
    return isinstance(value, str) and _HEX.fullmatch(value) is not None


def validate(value: object) -> str | None:
    """The admin's appearance, checked, as stored: {accent, position, texts: {language: {field: text}}}."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value.keys() <= {"accent", "position", "texts"}:
        raise _invalid('appearance must be an object with "accent", "position" and/or "texts".')
    stored: dict = {}
    if value.get("accent") is not None:
        accent = value["accent"]
        if not is_colour(accent):
            raise _invalid("accent must be a colour such as #2458d6.")
        accent = accent.lower()
        _text, ratio = text_colour(accent)
        if ratio < MIN_CONTRAST:
            raise _invalid(
                f"accent {accent} is refused: neither white nor dark text reaches {MIN_CONTRAST}:1 on it"
                f" (the best is {ratio:.2f}:1). Pick a lighter or a darker colour."
            )
        stored["accent"] = accent
    if value.get("position") is not None:
        if value["position"] not in POSITIONS:
            raise _invalid('position must be "right" or "left".')
        stored["position"] = value["position"]
    texts = value.get("texts") or {}
    if not isinstance(texts, dict) or not texts.keys() <= set(LANGUAGES):
        raise _invalid(f"appearance.texts must map {' or '.join(LANGUAGES)} to texts.")
    kept: dict = {}
    for language, fields in texts.items():
        if not isinstance(fields, dict) or not fields.keys() <= set(TEXT_FIELDS):
            raise _invalid(f"appearance.texts.{language} may have {', '.join(TEXT_FIELDS)}.")
        for field, text in fields.items():
            if text is None or (isinstance(text, str) and not text.strip()):
                continue
            limit = TEXT_FIELDS[field]
            if not isinstance(text, str) or len(text.strip()) > limit:
                raise _invalid(f"appearance.texts.{language}.{field} must be at most {limit} characters.")
            kept.setdefault(language, {})[field] = checked.clean_text(text.strip(), field)
    if kept:
        stored["texts"] = kept
    return json.dumps(stored, sort_keys=True, ensure_ascii=False) if stored else None


def settings(workstream: Workstream) -> dict:
    return json.loads(workstream.appearance) if workstream.appearance else {}


def for_widget(workstream: Workstream) -> dict:
    """What `welcome` carries: every language's texts, so a switch of language needs no request."""
    own = settings(workstream)
    accent = own.get("accent", DEFAULT_ACCENT)
    return {
        "accent": accent,
        "accent_text": text_colour(accent)[0],
        "position": own.get("position", "right"),
        "texts": own.get("texts", {}),
    }
