"""Headers every response carries, whatever blueprint answered: no content sniffing, no framing by other
sites. The console adds its own stricter policy (console/routes.py); widget.js stays loadable from any
origin, since a script tag is not framing and it is served with its real type."""

from flask import Flask, Response

HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    # No page of this server is meant to be shown inside another site's frame (clickjacking).
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


def _headers(response: Response) -> Response:
    for name, value in HEADERS:
        response.headers.setdefault(name, value)
    return response


def register(app: Flask) -> None:
    app.after_request(_headers)
