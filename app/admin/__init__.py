from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from . import agent_pages, api, auth_pages, pages, workstream_pages  # noqa: E402,F401
