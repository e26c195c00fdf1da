from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import api, webhooks_api  # noqa: E402,F401
