"""Checked input: every JSON body, websocket frame, query string, form and path passes one layer that
refuses, as a 400, what the database or Python would otherwise turn into a 500.

What is refused everywhere: JSON nested deeper than MAX_DEPTH (the decoder's recursion would fail
first), integers outside PostgreSQL's int4 (ids are int4 there; SQLite overflows at 2**63), NaN and
Infinity, lone surrogates (not encodable as UTF-8) and NUL characters (PostgreSQL refuses them in text).
Field-specific rules (lengths, choices, maximums) stay with the domain code that owns the field.
"""

import json
import math

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from .errors import ChatError

MAX_DEPTH = 32
MAX_INT = 2**31 - 1
MIN_INT = -(2**31)


def invalid(message: str, code: str = "invalid_request") -> ChatError:
    return ChatError(400, code, message)


def clean_text(value: str, what: str = "Text") -> str:
    """`value` unchanged if it can be stored: no NUL and no lone surrogate."""
    if "\x00" in value:
        raise invalid(f"{what} must not contain NUL characters.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise invalid(f"{what} must be valid Unicode (no lone surrogates).") from e
    return value


def _refuse_constant(name: str) -> None:
    raise invalid(f"{name} is not a JSON number the server accepts.")


def _check_tree(value: object) -> None:
    # Iterative: a structure just under the decoder's limit must not overflow this walk either.
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            clean_text(item, "Strings")
        elif isinstance(item, float):
            # 1e999 parses as infinity without going through parse_constant.
            if not math.isfinite(item):
                raise invalid("Numbers must be finite.")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise invalid(f"Integers must be between {MIN_INT} and {MAX_INT}.")
        else:
            if depth > MAX_DEPTH:
                raise invalid(f"JSON may be nested at most {MAX_DEPTH} levels deep.", "invalid_json")
            if isinstance(item, dict):
                for key, child in item.items():
                    clean_text(key, "Keys")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def loads(raw: str | bytes, what: str = "The request body") -> object:
    """Parse JSON text and check every value in it (see the module's docstring)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except ChatError:
        raise
    except (ValueError, RecursionError) as e:
        # RecursionError: nesting deep enough to exhaust the decoder's stack is invalid JSON to us.
        raise invalid(f"{what} is not valid JSON.", "invalid_json") from e
    _check_tree(value)
    return value


def json_object(raw: str | bytes, what: str = "The request body") -> dict:
    value = loads(raw, what)
    if not isinstance(value, dict):
        raise invalid(f"{what} must be a JSON object.", "invalid_json")
    return value


def integer(value: object, name: str, low: int = 0, high: int = MAX_INT) -> int:
    """A JSON integer (not a boolean) within [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}.")
    return value


def query_integer(
    raw: str | None, name: str, default: int | None = None, low: int = 0, high: int = MAX_INT
) -> int | None:
    """A query string's integer within [low, high], or `default` when it is not given."""
    if raw is None:
        return default
    # Plain ASCII digits only: int() would also take "1_000", " 7" and other scripts' digits, and would
    # refuse "²", which isdigit() lets through.
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else None
    if value is None or not low <= value <= high:
        raise invalid(f"{name} must be an integer from {low} to {high}.")
    return value


class BoundedIntegerConverter(IntegerConverter):
    """Path ids: a number past int4 matches no route (a 404), rather than overflowing the query. The
    pattern itself stops at MAX_INT: a converter that refused the number after matching it would make
    werkzeug answer 405 wherever the same path has a route for another method."""

    # 0 to 2147483647, leading zeros allowed.
    regex = (
        r"0*(?:[0-9]{1,9}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
        r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])"
    )

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 (werkzeug's own signature)
        kwargs.setdefault("max", MAX_INT)
        super().__init__(map, *args, **kwargs)


def _check_request() -> None:
    # Werkzeug decodes with errors="replace", so no surrogate arrives here; NUL does (%00).
    clean_text(request.path, "The path")
    for source, what in ((request.args, "Query parameters"), (request.form, "Form fields")):
        for key, value in source.items(multi=True):
            clean_text(key, what)
            clean_text(value, what)


def register(app: Flask) -> None:
    """Before any blueprint adds its routes: the bounded `int` converter, and the check of every request."""
    app.url_map.converters["int"] = BoundedIntegerConverter
    app.before_request_funcs.setdefault(None, []).insert(0, _check_request)
