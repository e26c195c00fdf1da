"""Attachments: files in the conversation, both ways.

A file is uploaded first (streamed to a temporary file, checked, stored), then a message claims it by
id; the websocket frame carries only ids. Types are sniffed from the bytes; images are re-encoded
(no EXIF, upright) with a thumbnail; a scan command may refuse any file before it is visible. Files
are served from the chat server's own origin through signed, expiring URLs, so the widget on another
origin can show an image without putting its token in an `<img>` request.
"""

import codecs
import hashlib
import hmac
import json
import math
import secrets
import shlex
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import filetype
from flask import current_app, request
from sqlalchemy import select
from werkzeug.exceptions import ClientDisconnected

from . import images, storage
from .errors import ChatError, not_found
from .extensions import db
from .models import Attachment, Message, Workstream

CHUNK = 64 * 1024
# Type groups a workstream may allow; the content type is always the sniffed one.
TYPES = {
    "image": tuple(images.FORMATS),
    "pdf": ("application/pdf",),
    "text": ("text/plain",),
    "office": (
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/rtf",
    ),
}
VARIANTS = ("file", "thumbnail")
SCAN_TIMEOUT_SECONDS = 120
# An upload waits this long for a message to carry it (an outbox may hold it while offline).
UNSENT_SECONDS = 7 * 24 * 3600


@dataclass
class Limits:
    max_bytes: int = 10 * 1024 * 1024
    max_files: int = 10
    types: list[str] = field(default_factory=lambda: list(TYPES))

    def allows(self, content_type: str) -> bool:
        return any(content_type in TYPES[group] for group in self.types)


def validate_limits(value: object) -> str | None:
    """A workstream's `attachment_limits` (admin API and CLI) as stored; None keeps the defaults."""
    if value is None:
        return None
    invalid = ChatError(
        400,
        "invalid_workstream",
        "attachment_limits must be an object with max_bytes (1 to 100 MB), max_files (0 to 20) and "
        f"types (a list of {', '.join(TYPES)}).",
    )
    if not isinstance(value, dict) or set(value) - {"max_bytes", "max_files", "types"}:
        raise invalid
    if "max_bytes" in value and not _int_between(value["max_bytes"], 1, 100 * 1024 * 1024):
        raise invalid
    if "max_files" in value and not _int_between(value["max_files"], 0, 20):
        raise invalid
    types = value.get("types", list(TYPES))
    if not isinstance(types, list) or any(not isinstance(t, str) or t not in TYPES for t in types):
        raise invalid
    return json.dumps(value, sort_keys=True)


def _int_between(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def limits_for(workstream: Workstream) -> Limits:
    stored = json.loads(workstream.attachment_limits) if workstream.attachment_limits else {}
    return Limits(**stored)


def configured_storage() -> storage.Storage:
    app = current_app
    if "attachment_storage" not in app.extensions:
        app.extensions["attachment_storage"] = storage.from_url(
            app.config.get("ATTACHMENTS_URL"), Path(app.instance_path)
        )
    return app.extensions["attachment_storage"]


# Sniffing -----------------------------------------------------------------------------------------


def sniff(path: Path) -> str | None:
    """The content type the bytes say, or None. Plain text has no signature: it is UTF-8 without
    control characters other than whitespace."""
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r\f" for c in text):
        return None
    return "text/plain"


def clean_name(name: object) -> str:
    """What the customer called the file, minus any path and control characters."""
    text = name if isinstance(name, str) else ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip().strip(".")
    return text[:200] or "file"


# Uploading ----------------------------------------------------------------------------------------


def _receive(source: BinaryIO, declared: int | None, limits: Limits, into: Path) -> int:
    """Copy the body to `into` a chunk at a time, refusing it as soon as it is over the limit."""
    too_large = ChatError(413, "attachment_too_large", f"Files are limited to {_megabytes(limits.max_bytes)} MB.")
    if declared is not None and declared > limits.max_bytes:
        raise too_large
    total = 0
    with into.open("wb") as out:
        while True:
            try:
                chunk = source.read(CHUNK)
            except ClientDisconnected as gone:
                raise _incomplete() from gone
            if not chunk:
                break
            total += len(chunk)
            if total > limits.max_bytes:
                raise too_large
            out.write(chunk)
    if declared is not None and total < declared:
        raise _incomplete()
    if total == 0:
        raise ChatError(400, "attachment_empty", "The file is empty.")
    return total


def _incomplete() -> ChatError:
    return ChatError(400, "attachment_incomplete", "The upload ended before the whole file arrived.")


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g}"


def _scan(path: Path) -> None:
    """ATTACHMENT_SCAN_COMMAND gets the file's path as its last argument; anything but exit 0 refuses it."""
    command = current_app.config.get("ATTACHMENT_SCAN_COMMAND")
    if not command:
        return
    try:
        result = subprocess.run(
            [*shlex.split(command), str(path)], capture_output=True, timeout=SCAN_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as failed:
        current_app.logger.error("attachment scan could not run: %s", failed)
        raise ChatError(422, "attachment_rejected", "The file could not be checked, so it is refused.") from failed
    if result.returncode != 0:
        raise ChatError(422, "attachment_rejected", "The file did not pass the malware check.")


# Image work is CPU-bound and holds a decoded image in memory: at most this many at once per process.
IMAGE_THREADS = 2
_image_pool = None


def _off_loop(fn, *args):
    """Run CPU-bound work in a real thread when gevent runs the server, so other sockets keep moving."""
    global _image_pool
    from gevent import monkey, threadpool

    if not monkey.is_module_patched("threading"):
        return fn(*args)
    if _image_pool is None:
        _image_pool = threadpool.ThreadPool(IMAGE_THREADS)
    return _image_pool.apply(fn, args)


def upload(
    source: BinaryIO,
    declared_length: int | None,
    name: object,
    workstream: Workstream,
    *,
    customer_id: int | None = None,
    agent_id: int | None = None,
    conversation_id: int | None = None,
) -> Attachment:
    """Receive, check and store one file; nothing is kept of a refused one."""
    limits = limits_for(workstream)
    if limits.max_files == 0:
        raise ChatError(415, "attachment_type_not_allowed", "This chat does not take attachments.")
    workstream_id = workstream.id
    # The body may take minutes to arrive: no transaction (on SQLite, the write lock) may wait with it.
    db.session.remove()
    incoming = Path(current_app.instance_path) / "attachments-incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=incoming))
    body, display, thumbnail = work / "body", work / "display", work / "thumbnail"
    try:
        size = _receive(source, declared_length, limits, body)
        content_type = sniff(body)
        if content_type is None or not limits.allows(content_type):
            raise ChatError(
                415, "attachment_type_not_allowed", "Images, PDF, text and office documents are allowed here."
            )
        _scan(body)
        prepared = _prepare_image(body, content_type, display, thumbnail) if content_type in images.FORMATS else None
        attachment = Attachment(
            id=secrets.token_urlsafe(16),
            workstream_id=workstream_id,
            conversation_id=conversation_id,
            customer_id=customer_id,
            agent_id=agent_id,
            name=clean_name(name),
            content_type=content_type,
            size=display.stat().st_size if prepared else size,
            width=prepared.width if prepared else None,
            height=prepared.height if prepared else None,
            has_thumbnail=prepared is not None,
        )
        files = {"file": display, "thumbnail": thumbnail} if prepared else {"file": body}
        _store(attachment, files)
        return attachment
    finally:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()


def _prepare_image(body: Path, content_type: str, display: Path, thumbnail: Path) -> images.Prepared:
    try:
        return _off_loop(images.prepare, body, content_type, display, thumbnail)
    except images.ImageTooLarge as bomb:
        raise ChatError(422, "attachment_image_too_large", "The image has too many pixels to be shown.") from bomb
    except images.ImageUnreadable as broken:
        raise ChatError(422, "attachment_corrupt", "The image is damaged and cannot be shown.") from broken


def _store(attachment: Attachment, files: dict[str, Path]) -> None:
    """The bytes first, then the row: a row never points at nothing, and a failed commit takes its
    bytes back out."""
    store = configured_storage()
    stored = []
    try:
        for variant, path in files.items():
            with path.open("rb") as f:
                store.put(_key(attachment, variant), f)
            stored.append(variant)
        db.session.add(attachment)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        for variant in stored:
            store.delete(_key(attachment, variant))
        raise


def streams_body(view):
    """Marks an upload view: it reads its body itself, as a stream, under the workstream's limit
    (admission.read_body_first leaves such a body alone)."""
    view.streams_body = True
    return view


def is_streamed() -> bool:
    return getattr(current_app.view_functions.get(request.endpoint), "streams_body", False)


def lift_body_limit() -> None:
    """First of all hooks: a look at form fields (the checked-input layer) opens the body stream, with
    the app's 256 KiB limit unless an upload has lifted it. The upload checks its own while it reads."""
    if is_streamed():
        # None would fall back to the app's setting: "no limit here" is a number too big to reach.
        request.max_content_length = 1 << 62


def request_body() -> BinaryIO:
    return request.stream


def _key(attachment: Attachment, variant: str) -> str:
    return f"{attachment.id}/{variant}"


# Claiming by a message ----------------------------------------------------------------------------


def claimable(
    ids: object, workstream: Workstream, *, customer_id: int | None = None, conversation_id: int | None = None
) -> list[Attachment]:
    """The caller's own uploads that a new message may carry, in the order given. A customer's are
    theirs in this workstream; an agent's were uploaded to this conversation."""
    if ids is None:
        return []
    limits = limits_for(workstream)
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 32 for i in ids):
        raise ChatError(400, "invalid_request", "attachments must be a list of attachment ids.")
    if len(set(ids)) != len(ids):
        raise ChatError(400, "invalid_request", "An attachment is listed twice.")
    if len(ids) > limits.max_files:
        raise ChatError(400, "too_many_attachments", f"A message carries at most {limits.max_files} files.")
    query = select(Attachment).where(Attachment.id.in_(ids), Attachment.workstream_id == workstream.id)
    if customer_id is not None:
        query = query.where(Attachment.customer_id == customer_id)
    else:
        query = query.where(Attachment.agent_id.is_not(None), Attachment.conversation_id == conversation_id)
    found = {a.id: a for a in db.session.scalars(query)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise not_found("attachment")
    if any(a.message_id is not None for a in found.values()):
        raise ChatError(409, "attachment_in_use", "An attachment already belongs to another message.")
    return [found[i] for i in ids]


def of_messages(messages: Iterable[Message]) -> dict[int, list[Attachment]]:
    """Attachments per message id, in one query for a whole page."""
    ids = [m.id for m in messages if m.attachment_count]
    if not ids:
        return {}
    found: dict[int, list[Attachment]] = {}
    query = select(Attachment).where(Attachment.message_id.in_(ids)).order_by(Attachment.created_at)
    for a in db.session.scalars(query):
        found.setdefault(a.message_id, []).append(a)
    return found


def _delete(found: list[Attachment]) -> int:
    store = configured_storage()
    for a in found:
        store.delete(_key(a, "file"))
        if a.has_thumbnail:
            store.delete(_key(a, "thumbnail"))
        db.session.delete(a)
    return len(found)


def delete_conversations_files(conversation_ids: list[int]) -> int:
    """Delete the files of these conversations and their rows (in the caller's transaction, before the
    messages that carry them); returns how many."""
    found = select(Attachment).where(Attachment.conversation_id.in_(conversation_ids))
    return _delete(list(db.session.scalars(found)))


def delete_customers_files(customer_ids: list[int]) -> int:
    """What these customers uploaded and never sent (their sent files go with their conversations)."""
    return _delete(list(db.session.scalars(select(Attachment).where(Attachment.customer_id.in_(customer_ids)))))


def delete_unsent(now: datetime, batch: int = 100) -> int:
    """Uploads no message took within UNSENT_SECONDS (a closed tab, a cancelled send) are deleted by
    the timers, a batch per tick."""
    found = list(
        db.session.scalars(
            select(Attachment)
            .where(Attachment.message_id.is_(None), Attachment.created_at < now - timedelta(seconds=UNSENT_SECONDS))
            .limit(batch)
        )
    )
    deleted = _delete(found)
    db.session.commit()
    return deleted


# Capability URLs ----------------------------------------------------------------------------------


def _signature(attachment_id: str, variant: str, expires: int) -> str:
    key = hashlib.sha256(b"attachment-url:" + current_app.config["SECRET_KEY"].encode()).digest()
    message = f"{attachment_id}/{variant}/{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def signed_path(attachment_id: str, variant: str, now: float | None = None) -> str:
    """A path on the chat server that serves the file until it expires. The expiry is rounded up to
    the hour, so one file keeps one URL (and one cache entry) for an hour at a time."""
    lifetime = int(current_app.config.get("ATTACHMENT_URL_SECONDS", 24 * 3600))
    now = time.time() if now is None else now
    expires = math.ceil((now + lifetime) / 3600) * 3600
    return f"/attachments/{attachment_id}/{variant}?expires={expires}&sig={_signature(attachment_id, variant, expires)}"


def check_signature(attachment_id: str, variant: str, expires: object, signature: object) -> None:
    try:
        when = int(expires)
    except (TypeError, ValueError):
        when = None
    if (
        when is None
        or not isinstance(signature, str)
        # As bytes: compare_digest refuses str with anything but ASCII in it, and the link is the caller's.
        or not hmac.compare_digest(signature.encode(), _signature(attachment_id, variant, when).encode())
    ):
        raise ChatError(403, "attachment_link_invalid", "This attachment link is not valid.")
    if when < time.time():
        raise ChatError(403, "attachment_link_expired", "This attachment link has expired; reload the conversation.")


def describe(a: Attachment) -> dict:
    """The Attachment object of docs/protocol.md."""
    return {
        "id": a.id,
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "image": a.has_thumbnail,
        "width": a.width,
        "height": a.height,
        "url": signed_path(a.id, "file"),
        "thumbnail_url": signed_path(a.id, "thumbnail") if a.has_thumbnail else None,
    }
