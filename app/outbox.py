"""The outbox: side effects (emails here, webhooks in webhooks.py) written in the transaction that
decides them, delivered by the one scheduler of the deployment (timers.py) with the same attempt
counting and backoff. Emails are retried while the SMTP server answers 4xx or cannot be reached, given
up on a 5xx or after MAX_ATTEMPTS.

Never sent twice: an attempt is counted, and the next one scheduled, in a commit *before* the message
goes to the SMTP server. The one case that repeats is a crash (or a lost database) between the server
accepting the message and the row being marked sent: the message then goes again at the next attempt.
"""

import json
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import Delete, delete, select

from . import clock, lifecycle, mail
from .extensions import db
from .models import Conversation, OutboxEmail, OutboxWebhook

log = logging.getLogger(__name__)
# Seconds before the next attempt, by attempts made so far; the last one is given up after.
BACKOFF_SECONDS = (60, 5 * 60, 15 * 60, 60 * 60, 3 * 60 * 60)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
BATCH = 50
# Sent and given-up rows are kept this long for the record, then deleted.
KEEP_DAYS = 30


def add(kind: str, recipient: str, content: dict, conversation_id: int | None = None, agent_id: int | None = None):
    """Queue an email in the caller's transaction: it goes out only if that transaction commits."""
    row = OutboxEmail(
        kind=kind,
        recipient=recipient,
        content=json.dumps(content),
        conversation_id=conversation_id,
        agent_id=agent_id,
        status="pending",
        attempts=0,
        next_attempt_at=clock.now(),
        created_at=clock.now(),
    )
    db.session.add(row)
    return row


def claim(row: OutboxEmail | OutboxWebhook, now: datetime) -> int:
    """Count the attempt and schedule the next one, committed before the side effect: a crash while
    sending repeats it at most once, and a row can never be retried in a tight loop. Returns the
    attempts made, read before the commit (reading the row after it would open a transaction)."""
    row.attempts += 1
    attempts = row.attempts
    row.next_attempt_at = now + timedelta(seconds=BACKOFF_SECONDS[min(attempts, MAX_ATTEMPTS - 1) - 1])
    db.session.commit()
    return attempts


def _message(row: OutboxEmail) -> EmailMessage:
    content = json.loads(row.content)
    message = EmailMessage()
    message["From"] = mail.sender()
    message["To"] = row.recipient
    message["Subject"] = content["subject"]
    message["Date"] = format_datetime(row.created_at.replace(tzinfo=UTC), usegmt=True)
    for name, value in content.get("headers", {}).items():
        message[name] = value
    message.set_content(content["text"])
    if content.get("html"):
        message.add_alternative(content["html"], subtype="html")
    return message


def _conversation_delivery(row: OutboxEmail, status: str, error: str | None, now: datetime) -> None:
    """The console shows how the customer's latest email went: "Emailed 14:02", or why not."""
    if row.kind != "customer_reply" or row.conversation_id is None:
        return
    conversation = db.session.get(Conversation, row.conversation_id)
    conversation.email_status = status
    conversation.email_error = error
    if status == "sent":
        conversation.emailed_at = now
    lifecycle.announce(conversation, widget=False)


def deliver(now: datetime) -> int:
    """Send what is due; returns how many were sent. A failing server never stops the scheduler."""
    due = db.session.scalars(
        select(OutboxEmail.id)
        .where(OutboxEmail.status == "pending", OutboxEmail.next_attempt_at <= now)
        .order_by(OutboxEmail.id)
        .limit(BATCH)
    ).all()
    db.session.commit()
    return sum(_attempt(row_id, now) for row_id in due)


def _send(message: EmailMessage) -> None:
    if not mail.configured():
        raise mail.MailError("SMTP_URL is not set.", permanent=True)
    try:
        mail.send(message)
    except mail.MailError:
        raise
    except Exception as error:
        # Whatever else went wrong is this email's problem: the other emails and the timers go on.
        log.exception("sending an email failed")
        raise mail.MailError(f"Sending failed: {error}", permanent=False) from error


def _attempt(row_id: int, now: datetime) -> bool:
    """One attempt at one email; True when it was sent."""
    row = db.session.get(OutboxEmail, row_id)
    if row is None or row.status != "pending":
        db.session.commit()
        return False
    message = _message(row)
    attempts = claim(row, now)
    # No transaction is open while the SMTP server is talked to: on SQLite it would hold the write lock.
    try:
        _send(message)
    except mail.MailError as error:
        given_up = error.permanent or attempts >= MAX_ATTEMPTS
        log.warning("email %s to %s: %s%s", row_id, message["To"], error.reason, "" if given_up else ", retrying")
        row.last_error = error.reason
        if given_up:
            row.status = "failed"
        _conversation_delivery(row, "failed" if given_up else "retrying", error.reason, now)
        db.session.commit()
        return False
    row.status = "sent"
    row.sent_at = now
    row.last_error = None
    _conversation_delivery(row, "sent", None, now)
    db.session.commit()
    return True


def expired(model: type[OutboxEmail] | type[OutboxWebhook], now: datetime) -> Delete:
    """What pruning deletes: delivered or failed rows past KEEP_DAYS, found by created_at's index."""
    return delete(model).where(model.status != "pending", model.created_at < now - timedelta(days=KEEP_DAYS))


def prune(now: datetime) -> int:
    done = db.session.execute(expired(OutboxEmail, now)).rowcount
    db.session.commit()
    return done


def prune_webhooks(now: datetime) -> int:
    done = db.session.execute(expired(OutboxWebhook, now)).rowcount
    db.session.commit()
    return done
