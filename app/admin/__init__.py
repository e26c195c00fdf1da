from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import api, api_keys_api, privacy_api, webhooks_api  # noqa: E402,F401
