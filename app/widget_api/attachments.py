"""The customer's uploads: a raw request body, streamed to storage, answered with the stored file."""

from flask import g, jsonify, request

from .. import attachments
from . import bp
from .routes import API, _customer


@bp.post(f"{API}/attachments")
@attachments.streams_body
def upload_attachment(workstream_id: str):
    customer = _customer()
    stored = attachments.upload(
        attachments.request_body(),
        request.content_length,
        request.args.get("name"),
        g.workstream,
        customer_id=customer.id,
    )
    return jsonify({"attachment": attachments.describe(stored)}), 201
