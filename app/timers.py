"""What time triggers: unanswered offers, agents whose consoles went away, customers stranded with an
offline agent or a silent bot, auto-close, routing when operating hours begin, emails (unread replies, the outbox),
webhooks and retention.

`tick()` runs every few seconds in one process of the deployment at a time (a file lock on SQLite, a
PostgreSQL advisory lock on PostgreSQL); tests call it directly with the clock moved.
"""

import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, text
from sqlalchemy.orm import aliased

from . import attachments, bots, clock, conversations, lifecycle, notifications, privacy, routing, sqlite, webhooks
from .errors import ChatError
from .extensions import db
from .models import Agent, Conversation, Message, Workstream

log = logging.getLogger(__name__)
# Consoles ping every 25 s: allow for one missed beat on top of the grace period.
HEARTBEAT_SLACK_SECONDS = 30
ADVISORY_LOCK_KEY = 0x50435348  # "PCSH"


def expire_offers(now: datetime) -> int:
    """A pushed conversation not accepted in time goes back to the queue and its agent becomes
    `inactive`, so routing stops offering them more until they come back."""
    expired = db.session.scalars(
        select(Conversation).where(Conversation.status == "active", Conversation.offer_expires_at <= now)
    ).all()
    for conversation in expired:
        agent = conversation.agent
        routing.requeue(conversation, "system", None)
        if agent is not None and agent.presence != "inactive":
            lifecycle.change_presence(agent, "inactive")
        db.session.commit()
    return len(expired)


def agents_gone(now: datetime) -> int:
    """Agents whose every console has been gone for the grace period become offline."""
    grace = timedelta(seconds=current_app.config["PRESENCE_GRACE_SECONDS"] + HEARTBEAT_SLACK_SECONDS)
    gone = db.session.scalars(
        select(Agent).where(
            Agent.presence != "offline", or_(Agent.last_seen_at.is_(None), Agent.last_seen_at < now - grace)
        )
    ).all()
    for agent in gone:
        lifecycle.change_presence(agent, "offline")
    db.session.commit()
    return len(gone)


_said = aliased(Message)
_last_said = (
    select(func.max(_said.seq))
    .where(_said.conversation_id == Conversation.id, _said.sender_kind != "system")
    .correlate(Conversation)
    .scalar_subquery()
)
_last_sender = (
    select(Message.sender_kind)
    .where(Message.conversation_id == Conversation.id, Message.seq == _last_said)
    .correlate(Conversation)
    .scalar_subquery()
)


def requeue_stranded(now: datetime) -> int:
    """The fallback other products lack: a customer waiting for a reply from an agent who has been
    offline for the workstream's N minutes goes back to the queue, where someone else can answer."""
    stranded = db.session.scalars(
        select(Conversation)
        .join(Workstream, Conversation.workstream_id == Workstream.id)
        .join(Agent, Conversation.agent_id == Agent.id)
        # The conversation's last message from a person: is the customer the one waiting for an answer?
        .join(Message, and_(Message.conversation_id == Conversation.id, Message.seq == _last_said))
        .where(
            Conversation.status == "active",
            Workstream.fallback_offline_minutes.is_not(None),
            Agent.presence == "offline",
            Message.sender_kind == "customer",
        )
    ).all()
    moved = 0
    for conversation in stranded:
        minutes = conversation.workstream.fallback_offline_minutes
        if conversation.agent.presence_changed_at <= now - timedelta(minutes=minutes):
            routing.requeue(conversation, "system", None)
            moved += 1
    db.session.commit()
    return moved


def hand_over_from_silent_bots(now: datetime) -> int:
    """A customer waiting for a bot that will not answer goes to the queue (bots.py says which)."""
    moved = 0
    for conversation_id in bots.stranded(now):
        db.session.commit()
        try:
            conversations.hand_over(conversation_id, "system")
        except ChatError:
            # The bot answered or handed over meanwhile, or the customer ended the chat.
            db.session.rollback()
            continue
        moved += 1
    db.session.commit()
    return moved


def due_for_closing(now: datetime) -> Select | None:
    """The conversations auto_close closes now. One equality on workstream and status per rule, so each is
    a range of the retention index: a workstream's history, closed ones included, is not walked on every
    tick."""
    rules = []
    for workstream in db.session.scalars(select(Workstream)):
        idle_open = now - timedelta(seconds=workstream.auto_close_open_seconds)
        if workstream.mode == "live":
            rules.append(_rule(workstream, "active", Conversation.updated_at <= idle_open, _last_sender == "agent"))
        rules.append(_rule(workstream, "open", Conversation.updated_at <= idle_open))
        rules.append(_rule(workstream, "bot", Conversation.updated_at <= idle_open))
        idle_waiting = now - timedelta(seconds=workstream.auto_close_waiting_seconds)
        rules.append(_rule(workstream, "waiting", Conversation.updated_at <= idle_waiting))
        wrapped_up = now - timedelta(seconds=workstream.wrap_up_seconds)
        rules.append(_rule(workstream, "wrap_up", Conversation.ended_at <= wrapped_up))
    return select(Conversation).where(or_(*rules)) if rules else None


def _rule(workstream: Workstream, status: str, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    return and_(Conversation.workstream_id == workstream.id, Conversation.status == status, *conditions)


def auto_close(now: datetime) -> int:
    """Close what has been left alone for the workstream's time: open and waiting conversations without
    activity, wrap-ups past their wrap-up time, and live chats whose visitor left after the agent's
    answer (a live visitor who closed the tab never comes back; an agent's capacity should not wait)."""
    query = due_for_closing(now)
    if query is None:
        return 0
    due = db.session.scalars(query).all()
    for conversation in due:
        agent = conversation.agent
        conversations.close(conversation, "system", None)
        if agent is not None:
            lifecycle.announce_agent(agent)
        db.session.commit()
    return len(due)


def tick(now: datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    return {
        "offers_expired": expire_offers(now),
        "agents_offline": agents_gone(now),
        "requeued": requeue_stranded(now),
        "handed_over": hand_over_from_silent_bots(now),
        "closed": auto_close(now),
        "assigned": routing.dispatch(now),
        "emailed": notifications.tick(now),
        "unsent_files_deleted": attachments.delete_unsent(now),
        "webhooks_delivered": webhooks.tick(now),
        "retention_deleted": privacy.retention_tick(now),
    }


@contextmanager
def leadership() -> Iterator[bool]:
    """True in exactly one process of the deployment at a time."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            won = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar()
            try:
                yield bool(won)
            finally:
                if won:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
                connection.commit()
        return
    # SQLite lives on one host: a lock file beside the database is enough.
    path = Path(current_app.instance_path) / "scheduler.lock"
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start(app: Flask) -> threading.Thread:
    """Run tick() every SCHEDULER_INTERVAL seconds in the background (a greenlet under gevent)."""

    def run() -> None:
        while True:
            time.sleep(app.config["SCHEDULER_INTERVAL"])
            with app.app_context():
                try:
                    with leadership() as leader:
                        if leader:
                            tick()
                except sqlite.DatabaseBusy as error:
                    # A backup or the sqlite3 shell holds the lock: one line a tick, the next one retries.
                    log.warning("scheduler tick skipped: %s", error)
                    db.session.rollback()
                except Exception:
                    # One bad tick must not stop the timers for good; it is logged and the next one runs.
                    log.exception("scheduler tick failed")
                    db.session.rollback()
                finally:
                    db.session.remove()

    thread = threading.Thread(target=run, name="persistent-chat-scheduler", daemon=True)
    thread.start()
    return thread
