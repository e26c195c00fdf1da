"""The traffic of a working team, written cheaply: a customer's message in a conversation an agent holds.

Most messages are exactly that, and for them `conversations.post_customer_message` asks this module
first. A message here costs three statements on the database driver itself (was it sent before; take the
conversation's next seq, if the conversation is still assigned and nothing about it changes; insert),
without the ORM's per-statement machinery, which cost several times what the database did. Under
gevent (the server) the messages of concurrent sockets share one transaction (group commit): a writer
greenlet takes whatever is queued, writes it in one transaction, commits, publishes each message's
event in order and only then wakes each sender, so an ack still means the message is stored.

Anything else (a new conversation, a waiting one coming back, a conversation in the queue, new context
variables, attachments, a repeated client_id, any error) answers None: the caller takes the general
path, which is the reference for what a message does. The result is the same either way.
"""

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from gevent import monkey
from sqlalchemy.engine import Engine

from . import clock, driver, events, payloads, sqlite, webhooks
from .errors import BUSY
from .extensions import db
from .models import CURRENT_STATUSES, Conversation, Message, OutboxWebhook, Webhook

log = logging.getLogger(__name__)

_SENT_BEFORE = f"""
SELECT m.id FROM {Message.__tablename__} m JOIN {Conversation.__tablename__} c ON c.id = m.conversation_id
WHERE m.client_id = :client_id AND c.customer_id = :customer_id AND c.workstream_id = :workstream_id
"""
# The current conversation, only while an agent holds it and its context stays: anything else is a
# state change, for the general path. Automated messages are not activity; this one is (updated_at).
# The IN names the current conversations' unique index, the one row: without it SQLite's planner, which
# has no statistics, walked every active conversation on (status, agent_id).
_NEXT_SEQ = f"""
UPDATE {Conversation.__tablename__}
SET last_seq = last_seq + 1, updated_at = :now, locale = COALESCE(CAST(:locale AS VARCHAR(16)), locale)
WHERE customer_id = :customer_id AND workstream_id = :workstream_id
  AND status IN ({", ".join(f"'{s}'" for s in CURRENT_STATUSES)}) AND status = 'active'
  AND agent_id IS NOT NULL AND (CAST(:context AS TEXT) IS NULL OR context = :context)
RETURNING id, last_seq, agent_id,
  EXISTS (SELECT 1 FROM {Webhook.__tablename__} w WHERE w.workstream_id = :workstream_id AND w.active)
"""
_INSERT = f"""
INSERT INTO {Message.__tablename__}
  (conversation_id, seq, sender_kind, sender_agent_id, sender_name, body, client_id, created_at, attachment_count)
VALUES (:conversation_id, :seq, 'customer', NULL, NULL, :body, :client_id, :now, 0)
RETURNING id
"""
# One outbox row per webhook of the workstream that wants the event (webhooks.py writes the same).
_WEBHOOK_OUTBOX = f"""
INSERT INTO {OutboxWebhook.__tablename__}
  (webhook_id, event_id, event, conversation_id, payload, status, attempts, next_attempt_at, created_at)
SELECT id, :event_id, :event, :conversation_id, :payload, 'pending', 0, :now, :now FROM {Webhook.__tablename__}
WHERE workstream_id = :workstream_id AND active AND (' ' || events || ' ') LIKE :wanted
"""


@dataclass(slots=True)
class Posted:
    """The stored message, as much of it as its sender and its event need: what `Message` has, without
    the ORM's instrumentation (building one cost more than inserting the row)."""

    id: int
    conversation_id: int
    seq: int
    body: str
    client_id: str
    created_at: datetime
    sender_kind: str = "customer"
    sender_agent_id: None = None
    sender_name: None = None
    attachment_count: int = 0


@dataclass
class _Job:
    workstream_id: str
    customer_id: int
    client_id: str
    body: str
    context: str | None
    locale: str | None
    message: Posted | None = None
    # The database could not be had in time (errors.BUSY): the caller raises it.
    busy: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)


class _Statements:
    """The statements in the driver's own parameter style."""

    def __init__(self, engine: Engine):
        self.sqlite = driver.is_sqlite(engine)
        self.sent_before = driver.native(_SENT_BEFORE, self.sqlite)
        self.next_seq = driver.native(_NEXT_SEQ, self.sqlite)
        self.insert = driver.native(_INSERT, self.sqlite)
        self.webhook_outbox = driver.native(_WEBHOOK_OUTBOX, self.sqlite)


class Writer:
    """One per database engine and process. Under gevent a greenlet writes batches; elsewhere (tests,
    the CLI) each message is its own transaction, written by the caller."""

    def __init__(self, engine: Engine, lock_wait: float):
        self.engine = engine
        self.statements = _Statements(engine)
        self.lock_wait = lock_wait
        self._queue: list[_Job] = []
        self._wake = threading.Event()
        self._greenlet = None
        self._lock = threading.Lock()

    def post(self, job: _Job) -> Posted | None:
        if monkey.is_module_patched("threading"):
            self._queue.append(job)
            if self._greenlet is None:
                import gevent

                self._greenlet = gevent.spawn(self._run)
            self._wake.set()
            job.done.wait()
        else:
            with self._lock:
                self._write([job])
        if job.busy is not None:
            raise job.busy
        return job.message

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    self._write(batch)
                except Exception:
                    log.exception("writing a batch of messages failed")
                finally:
                    for job in batch:
                        job.done.set()

    def _write(self, batch: list[_Job]) -> None:
        """Write `batch` in one transaction and publish what it stored. On a failure nothing is kept and
        every job answers None (the general path then writes it, or reports why it cannot), except when
        the database could not be had in time: waiting for it again there would only double the wait."""
        published: list[tuple[list[str], str]] = []
        connection = None
        try:
            connection = self.engine.raw_connection()
            if self.statements.sqlite:
                sqlite.begin_immediate(connection.dbapi_connection, self.lock_wait)
            cursor = connection.cursor()
            now = clock.now()
            stamp = driver.timestamp(now, self.statements.sqlite)
            for job in batch:
                published += self._append(cursor, job, now, stamp)
            cursor.close()
            connection.commit()
        except Exception as error:
            published = []
            for job in batch:
                job.message = None
                job.busy = error if isinstance(error, BUSY) else None
            if connection is not None:
                try:
                    connection.rollback()
                except Exception:
                    connection.invalidate()
            log.warning("a batch of %d messages was not written: %s", len(batch), error)
        finally:
            if connection is not None:
                connection.close()
        for channels, frame in published:
            events.hub.publish(channels, frame)

    def _append(self, cursor, job: _Job, now: datetime, stamp: object) -> list[tuple[list[str], str]]:
        keys = {"client_id": job.client_id, "customer_id": job.customer_id, "workstream_id": job.workstream_id}
        cursor.execute(self.statements.sent_before, keys)
        if cursor.fetchall():
            return []
        cursor.execute(self.statements.next_seq, {**keys, "now": stamp, "context": job.context, "locale": job.locale})
        row = cursor.fetchall()
        if not row:
            return []
        conversation_id, seq, agent_id, has_webhooks = row[0]
        values = {"conversation_id": conversation_id, "seq": seq, "body": job.body, "client_id": job.client_id}
        cursor.execute(self.statements.insert, {**values, "now": stamp})
        (message_id,) = cursor.fetchall()[0]
        message = Posted(message_id, conversation_id, seq, job.body, job.client_id, now)
        if has_webhooks:
            event_id, event, payload = webhooks.message_event(job.workstream_id, "active", message)
            cursor.execute(
                self.statements.webhook_outbox,
                {
                    "event_id": event_id,
                    "event": event,
                    "conversation_id": conversation_id,
                    "payload": payload,
                    "now": stamp,
                    "workstream_id": job.workstream_id,
                    "wanted": f"% {event} %",
                },
            )
        job.message = message
        channels = [
            events.customer_channel(job.customer_id, job.workstream_id),
            events.conversation_channel(conversation_id),
            events.agent_channel(agent_id),
        ]
        frame = json.dumps({"type": "message", "message": payloads.message(message, [])}, separators=(",", ":"))
        return [(channels, frame)]


def _writer() -> Writer:
    writers: dict = current_app.extensions.setdefault("posting", {})
    engine = db.engine
    writer = writers.get(engine)
    if writer is None:
        writer = writers[engine] = Writer(engine, current_app.config.get("SQLITE_LOCK_WAIT_SECONDS", 10.0))
    return writer


def customer_message(
    workstream_id: str, customer_id: int, client_id: str, body: str, context: str | None, locale: str | None
) -> Posted | None:
    """Store and publish a customer's message in their conversation while an agent holds it; None when
    the message is anything else (see the module's doc)."""
    return _writer().post(_Job(workstream_id, customer_id, client_id, body, context, locale))
