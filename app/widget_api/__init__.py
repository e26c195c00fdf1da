from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("widget_api", __name__)
# The widget authenticates with a bearer token, never a cookie, so there is nothing to forge.
csrf.exempt(bp)

from . import attachments, preview, return_link, routes, socket  # noqa: E402,F401
