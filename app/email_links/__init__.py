"""The links in our emails that the server answers itself: one-click unsubscribe (RFC 8058)."""

from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("email_links", __name__, url_prefix="/email")
# A mail client's one-click POST carries no session and no CSRF token: the signed link is the proof.
csrf.exempt(bp)

from . import routes  # noqa: E402,F401
