from flask import Blueprint

bp = Blueprint("console", __name__, url_prefix="/console")

from . import api, attachments, canned_pages, profile, routes, socket  # noqa: E402,F401
