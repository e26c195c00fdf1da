"""The widget's half of an email's link back: which conversation to open, for the signed-in customer."""

from flask import g, jsonify, request

from .. import signed_links
from . import bp
from .routes import API, _customer


@bp.get(f"{API}/return-link")
def open_return_link(workstream_id: str):
    customer = _customer()
    conversation_id = signed_links.open_return_link(customer.id, g.workstream.id, request.args.get("link"))
    return jsonify({"conversation_id": conversation_id})
