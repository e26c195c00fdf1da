"""Serving stored attachments from the chat server's own origin, through signed, expiring URLs."""

from urllib.parse import quote

from flask import Blueprint, Response, request

from . import attachments, images
from .errors import not_found
from .extensions import db
from .models import Attachment

bp = Blueprint("attachment_files", __name__)

# Nothing in a served file may run or load anything, even if a browser were talked into rendering it.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _disposition(kind: str, name: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


@bp.get("/attachments/<attachment_id>/<variant>")
def serve(attachment_id: str, variant: str) -> Response:
    if variant not in attachments.VARIANTS:
        raise not_found("attachment")
    attachments.check_signature(attachment_id, variant, request.args.get("expires"), request.args.get("sig"))
    attachment = db.session.get(Attachment, attachment_id)
    if attachment is None or (variant == "thumbnail" and not attachment.has_thumbnail):
        raise not_found("attachment")
    try:
        chunks = attachments.configured_storage().stream(f"{attachment.id}/{variant}")
    except FileNotFoundError:
        raise not_found("attachment") from None
    image = attachment.content_type in images.FORMATS
    content_type = images.THUMBNAIL_TYPE if variant == "thumbnail" else attachment.content_type
    if content_type == "text/plain":
        content_type = "text/plain; charset=utf-8"
    response = Response(chunks, content_type=content_type, direct_passthrough=True)
    if variant == "file":
        response.content_length = attachment.size
    # Only the four image types (never SVG or HTML) are ever shown inline.
    response.headers["Content-Disposition"] = _disposition("inline" if image else "attachment", attachment.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
