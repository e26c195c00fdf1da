"""What a live widget shows before its visitor opens it, asked without a token: the workstream and
its hours. Nothing is stored for it: the visitor's token, their storage entry and their customer row
come when they first open the chat."""

from flask import g, jsonify, request

from .. import automated_messages, payloads
from . import bp
from .routes import API
from .socket import _hours


@bp.get(f"{API}/preview")
def preview(workstream_id: str):
    workstream = g.workstream
    return jsonify(
        {
            "workstream": payloads.widget_workstream(workstream),
            "hours": _hours(workstream, automated_messages.validate_locale(request.args.get("locale"))),
        }
    )
