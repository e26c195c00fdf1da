"""Webhooks: a workstream's events, POSTed to the site's URLs, signed, through the outbox.

An event is written to the outbox (OutboxWebhook) in the transaction of the change it tells of, so a
rolled-back change sends nothing and a committed one is never lost. The scheduler delivers it
(deliver()), counting the attempt before sending as the email outbox does, retrying with the same
backoff; a webhook's events of one conversation go in the order they happened: a later one waits while
an earlier one is still being retried. A receiver answering 410 Gone switches its webhook off.

The signature (docs in README, "Integrations"): header `Chat-Signature: t=UNIX,v1=HEX`, where HEX is
HMAC-SHA256 with the webhook's secret of `UNIX + "." + body`; receivers refuse a stale t.
"""

import hashlib
import hmac
import json
import logging
import secrets
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased

from . import bots, clock, outbox
from .clock import iso
from .errors import ChatError, not_found
from .extensions import db
from .models import Conversation, Message, OutboxWebhook, Rating, Webhook, Workstream

if TYPE_CHECKING:
    from .posting import Posted

log = logging.getLogger(__name__)
EVENTS = ("conversation.started", "message.created", "conversation.status_changed", "rating.given")
SIGNATURE_HEADER = "Chat-Signature"
BATCH = 20
MAX_URL_CHARS = 2000
# Deliveries listed per webhook (the newest).
RECENT = 50


# Registration -----------------------------------------------------------------------------------------


def _url(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_URL_CHARS:
        raise ChatError(400, "invalid_webhook", f"url must be an http or https URL of at most {MAX_URL_CHARS} chars.")
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError as error:
        raise ChatError(400, "invalid_webhook", f"url is not a URL: {error}.") from error
    if parts.scheme not in ("http", "https") or not parts.hostname or not value.isascii():
        raise ChatError(400, "invalid_webhook", "url must be an http or https URL.")
    return value


def _events(value: object) -> str:
    if not isinstance(value, list) or not value or not all(isinstance(e, str) for e in value):
        raise ChatError(400, "invalid_webhook", f"events must be a non-empty list of: {', '.join(EVENTS)}.")
    unknown = sorted(set(value) - set(EVENTS))
    if unknown:
        raise ChatError(400, "invalid_webhook", f"Unknown events: {', '.join(unknown)}; known: {', '.join(EVENTS)}.")
    return " ".join(e for e in EVENTS if e in value)


def create(workstream_id: str, data: dict) -> Webhook:
    if db.session.get(Workstream, workstream_id) is None:
        raise not_found("workstream")
    unknown = set(data) - {"url", "events"}
    if unknown:
        raise ChatError(400, "invalid_webhook", f"Unknown fields: {', '.join(sorted(unknown))}.")
    webhook = Webhook(
        workstream_id=workstream_id,
        url=_url(data.get("url")),
        events=_events(data.get("events")),
        secret="whsec_" + secrets.token_urlsafe(32),
        active=True,
        created_at=clock.now(),
    )
    db.session.add(webhook)
    db.session.commit()
    return webhook


def update(webhook: Webhook, data: dict) -> Webhook:
    unknown = set(data) - {"url", "events", "active"}
    if unknown:
        raise ChatError(400, "invalid_webhook", f"Unknown fields: {', '.join(sorted(unknown))}.")
    url = _url(data["url"]) if "url" in data else webhook.url
    events = _events(data["events"]) if "events" in data else webhook.events
    if bots.HEARS not in events.split() and bots.is_bot_of(webhook):
        raise ChatError(
            409, "bot_webhook", f"This webhook is a workstream's bot: it keeps {bots.HEARS}, to hear the customer."
        )
    active = data.get("active", webhook.active)
    if not isinstance(active, bool):
        raise ChatError(400, "invalid_webhook", "active must be true or false.")
    webhook.url, webhook.events = url, events
    if active and not webhook.active:
        webhook.disabled_reason = None
    elif not active and webhook.active:
        webhook.disabled_reason = "Switched off by an admin."
    webhook.active = active
    db.session.commit()
    return webhook


def remove(webhook: Webhook) -> None:
    if bots.is_bot_of(webhook):
        raise ChatError(409, "bot_webhook", "This webhook is a workstream's bot: remove the bot first.")
    db.session.query(OutboxWebhook).filter(OutboxWebhook.webhook_id == webhook.id).delete()
    db.session.delete(webhook)
    db.session.commit()


def get(webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise not_found("webhook")
    return webhook


def describe(webhook: Webhook, *, secret: bool = False) -> dict:
    """The secret is shown once, when the webhook is created."""
    described = {
        "id": webhook.id,
        "workstream_id": webhook.workstream_id,
        "url": webhook.url,
        "events": webhook.events.split(),
        "active": webhook.active,
        "disabled_reason": webhook.disabled_reason,
        "created_at": iso(webhook.created_at),
    }
    if secret:
        described["secret"] = webhook.secret
    return described


def describe_delivery(row: OutboxWebhook) -> dict:
    return {
        "id": row.id,
        "webhook_id": row.webhook_id,
        "event_id": row.event_id,
        "event": row.event,
        "conversation_id": row.conversation_id,
        "status": row.status,
        "attempts": row.attempts,
        "response_code": row.response_code,
        "last_error": row.last_error,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "created_at": iso(row.created_at),
        "sent_at": iso(row.sent_at),
        "payload": json.loads(row.payload),
    }


def recent_deliveries(webhook: Webhook) -> list[OutboxWebhook]:
    return db.session.scalars(
        select(OutboxWebhook)
        .where(OutboxWebhook.webhook_id == webhook.id)
        .order_by(OutboxWebhook.id.desc())
        .limit(RECENT)
    ).all()


def redeliver(webhook: Webhook, delivery_id: int) -> OutboxWebhook:
    """Send a past event again, as a new delivery with the same event id (receivers deduplicate by it)."""
    past = db.session.get(OutboxWebhook, delivery_id)
    if past is None or past.webhook_id != webhook.id:
        raise not_found("delivery")
    row = _queue(webhook, past.event_id, past.event, past.conversation_id, past.payload)
    db.session.commit()
    return row


# Events: called in the transaction of the change ------------------------------------------------------


def _conversation(conversation: Conversation, status: str) -> dict:
    customer = conversation.customer
    return {
        "id": conversation.id,
        "workstream_id": conversation.workstream_id,
        "status": status,
        "customer": {"sub": customer.sub, "display_name": customer.display_name, "email": customer.email},
        "agent": {"id": conversation.agent.id, "name": conversation.agent.name} if conversation.agent else None,
        "started_at": iso(conversation.created_at),
    }


def _queue(webhook: Webhook, event_id: str, event: str, conversation_id: int | None, payload: str) -> OutboxWebhook:
    now = clock.now()
    row = OutboxWebhook(
        webhook_id=webhook.id,
        event_id=event_id,
        event=event,
        conversation_id=conversation_id,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.session.add(row)
    return row


def _body(event: str, data: dict) -> tuple[str, str]:
    """A new event's id and the JSON body every webhook of it receives."""
    event_id = "evt_" + secrets.token_urlsafe(16)
    body = json.dumps(
        {"id": event_id, "type": event, "created_at": iso(clock.now()), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return event_id, body


def _emit(conversation: Conversation, event: str, data: dict) -> None:
    listening = [
        w
        for w in db.session.scalars(
            select(Webhook).where(Webhook.workstream_id == conversation.workstream_id, Webhook.active)
        )
        if w.wants(event)
    ]
    if not listening:
        return
    event_id, body = _body(event, data)
    for webhook in listening:
        _queue(webhook, event_id, event, conversation.id, body)


def status_changed(conversation: Conversation, from_status: str | None, to_status: str, actor_kind: str) -> None:
    if from_status == to_status:
        return
    data = {"conversation": _conversation(conversation, to_status), "actor": actor_kind}
    if from_status is None:
        _emit(conversation, "conversation.started", data)
    else:
        _emit(conversation, "conversation.status_changed", {**data, "from_status": from_status})


def _message_data(workstream_id: str, status: str, message: "Message | Posted") -> dict:
    return {
        # The status tells a bot whether the conversation is still its own to answer.
        "conversation": {"id": message.conversation_id, "workstream_id": workstream_id, "status": status},
        "message": {
            "seq": message.seq,
            "sender": message.sender_kind,
            "sender_name": message.sender_name,
            "body": message.body,
            "created_at": iso(message.created_at),
        },
    }


def message_created(conversation: Conversation, message: Message) -> None:
    _emit(conversation, "message.created", _message_data(conversation.workstream_id, conversation.status, message))


def message_event(workstream_id: str, status: str, message: "Posted") -> tuple[str, str, str]:
    """The message.created event (id, type, body) for a writer that queues its outbox rows itself
    (posting.py): the same body `message_created` queues."""
    event_id, body = _body("message.created", _message_data(workstream_id, status, message))
    return event_id, "message.created", body


def rating_given(conversation: Conversation, rating: Rating) -> None:
    _emit(
        conversation,
        "rating.given",
        {
            "conversation": _conversation(conversation, conversation.status),
            "rating": {"score": rating.score, "comment": rating.comment, "created_at": iso(rating.created_at)},
        },
    )


# Delivery: the scheduler -----------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is the receiver's misconfiguration: it is reported, not followed with the signed body."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class _Refused(Exception):
    def __init__(self, reason: str, code: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code


def _post(url: str, secret: str, event: str, event_id: str, delivery_id: int, body: bytes, now: datetime) -> int:
    timestamp = int(now.replace(tzinfo=UTC).timestamp())
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "PersistentChat-Webhook/1",
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Chat-Event": event,
            "Chat-Event-Id": event_id,
            "Chat-Delivery": str(delivery_id),
        },
    )
    timeout = current_app.config.get("WEBHOOK_TIMEOUT_SECONDS", 10)
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        error.close()
        raise _Refused(f"HTTP {error.code}", error.code) from error
    except TimeoutError as error:
        raise _Refused(f"No answer within {timeout:g} s.") from error
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _Refused(f"No answer within {timeout:g} s.") from error
        raise _Refused(f"Could not connect: {error.reason}") from error
    except OSError as error:
        raise _Refused(f"Could not connect: {error}") from error


_earlier = aliased(OutboxWebhook)


def _waits_behind(now: datetime):
    """A conversation's later event waits while an earlier one of the same webhook waits for a retry."""
    return exists().where(
        _earlier.webhook_id == OutboxWebhook.webhook_id,
        _earlier.conversation_id == OutboxWebhook.conversation_id,
        _earlier.status == "pending",
        _earlier.id < OutboxWebhook.id,
        _earlier.next_attempt_at > now,
    )


def deliver(now: datetime) -> int:
    """Send what is due; returns how many were delivered. A failing receiver never stops the scheduler,
    and holds back only its own webhook: the rest of its events wait for the next tick."""
    due = db.session.scalars(
        select(OutboxWebhook.id)
        .join(Webhook, and_(Webhook.id == OutboxWebhook.webhook_id, Webhook.active))
        .where(OutboxWebhook.status == "pending", OutboxWebhook.next_attempt_at <= now, ~_waits_behind(now))
        .order_by(OutboxWebhook.id)
        .limit(BATCH)
    ).all()
    db.session.commit()
    held: set[int] = set()
    return sum(_attempt(row_id, now, held) for row_id in due)


def _attempt(row_id: int, now: datetime, held: set[int]) -> bool:
    """One attempt at one delivery; True when the receiver took it. A failure adds its webhook to `held`."""
    row = db.session.get(OutboxWebhook, row_id)
    webhook = db.session.get(Webhook, row.webhook_id) if row is not None else None
    if row is None or row.status != "pending" or not webhook.active or webhook.id in held:
        db.session.commit()
        return False
    webhook_id = webhook.id
    request = (webhook.url, webhook.secret, row.event, row.event_id, row.id, row.payload.encode())
    attempts = outbox.claim(row, now)
    # No transaction is open while the receiver is waited for: on SQLite it would hold the write lock.
    try:
        code = _post(*request, now)
    except _Refused as refused:
        held.add(webhook_id)
        log.warning("webhook %s delivery %s: %s", webhook_id, row_id, refused.reason)
        row.response_code = refused.code
        row.last_error = refused.reason[:500]
        if refused.code == 410:
            row.status = "failed"
            webhook.active = False
            webhook.disabled_reason = "The receiver answered 410 Gone."
        elif attempts >= outbox.MAX_ATTEMPTS:
            row.status = "failed"
        db.session.commit()
        return False
    except Exception:
        # Whatever else went wrong is this delivery's problem: the other webhooks and timers go on.
        log.exception("webhook %s delivery %s failed", webhook_id, row_id)
        held.add(webhook_id)
        row.last_error = "Sending failed (see the server's log)."
        if attempts >= outbox.MAX_ATTEMPTS:
            row.status = "failed"
        db.session.commit()
        return False
    row.status = "sent"
    row.sent_at = now
    row.response_code = code
    row.last_error = None
    db.session.commit()
    return True


def tick(now: datetime) -> int:
    delivered = deliver(now)
    outbox.prune_webhooks(now)
    return delivered
