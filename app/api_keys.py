"""API keys for the site's backend: created by an admin, shown once, stored as a hash, scoped to
workstreams, revoked for good."""

import hashlib
import hmac
import secrets

from sqlalchemy import select

from . import clock
from .clock import iso
from .errors import ChatError, not_found
from .extensions import db
from .models import ApiKey, Workstream

PREFIX = "pcsk_"
# Seen more often than this, last_used_at is not written again: a busy key should not write per request.
TOUCH_SECONDS = 60


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(data: dict) -> tuple[ApiKey, str]:
    """Returns the key's row and the key itself, which is never shown again."""
    unknown = set(data) - {"name", "workstream_ids"}
    if unknown:
        raise ChatError(400, "invalid_api_key", f"Unknown fields: {', '.join(sorted(unknown))}.")
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 120:
        raise ChatError(400, "invalid_api_key", "name must be 1 to 120 characters.")
    ids = data.get("workstream_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise ChatError(400, "invalid_api_key", "workstream_ids must be a non-empty list of workstream ids.")
    missing = sorted(i for i in set(ids) if db.session.get(Workstream, i) is None)
    if missing:
        raise ChatError(400, "invalid_api_key", f"No such workstreams: {', '.join(missing)}.")
    prefix = secrets.token_hex(6)
    key = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name.strip(),
        prefix=prefix,
        key_hash=_hash(key),
        workstream_ids=" ".join(dict.fromkeys(ids)),
        created_at=clock.now(),
    )
    db.session.add(row)
    db.session.commit()
    return row, key


def authenticate(header: str | None) -> ApiKey:
    """The key of an `Authorization: Bearer pcsk_…` header, or a 401."""
    key = header[7:].strip() if header and header.startswith("Bearer ") else ""
    parts = key.removeprefix(PREFIX).split("_", 1) if key.startswith(PREFIX) else []
    row = db.session.scalar(select(ApiKey).where(ApiKey.prefix == parts[0])) if len(parts) == 2 else None
    # Compared even for an unknown prefix, so the answer takes as long either way.
    expected = row.key_hash if row is not None else _hash("")
    if not hmac.compare_digest(expected, _hash(key)) or row is None or row.revoked_at is not None:
        raise ChatError(401, "invalid_api_key", "Send a valid API key: Authorization: Bearer pcsk_….")
    now = clock.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > TOUCH_SECONDS:
        row.last_used_at = now
        db.session.commit()
    return row


def get(key_id: int) -> ApiKey:
    row = db.session.get(ApiKey, key_id)
    if row is None:
        raise not_found("API key")
    return row


def revoke(row: ApiKey) -> ApiKey:
    row.revoked_at = row.revoked_at or clock.now()
    db.session.commit()
    return row


def describe(row: ApiKey) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "prefix": PREFIX + row.prefix,
        "workstream_ids": row.workstream_ids.split(),
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
    }
