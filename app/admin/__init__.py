from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import (  # noqa: E402,F401
    agent_pages,
    api,
    api_keys_api,
    auth_pages,
    canned_pages,
    label_pages,
    pages,
    privacy_api,
    privacy_pages,
    webhooks_api,
    workstream_pages,
)
