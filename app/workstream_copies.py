"""Each process's read-only copies of the workstreams its widget sockets check at every handshake and
hello: the allowed origins, the authentication setting with its keys, the texts and the hours. A herd
of widgets reconnecting after a restart then costs the database only what depends on the customer.

A copy is dropped in every process when any process commits a change to a workstream, an
authentication setting or a key (an event through the hub, which Redis carries between processes), and
in any case after MAX_AGE_SECONDS: that bounds what the hub cannot see, a command run beside a server
on SQLite, SQL typed by hand, or any change while Redis is away.

A copy is detached from every session and shared by the process's sockets: read it, never change it
or hand it to a session (a new row's relationship, say).
"""

import threading
import time

from flask import Flask, current_app
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, selectinload

from . import events
from .extensions import db
from .models import AuthKey, AuthSetting, Workstream

MAX_AGE_SECONDS = 5.0
CHANNEL = "workstream-settings"
_SETTINGS = (Workstream, AuthSetting, AuthKey)
_TABLES = frozenset(model.__tablename__ for model in _SETTINGS)
_CHANGED = {"type": "workstream_settings_changed"}


class Copies:
    """One app's copies (tests run several apps, each on its own database, in one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loading = threading.Lock()
        self._rows: dict[str, tuple[float, Workstream]] = {}
        # Bumped by every drop: a copy loaded across a drop may be older than the change.
        self._generation = 0
        self._subscription: events.Subscription | None = None
        self._hub: events.LocalHub | None = None
        self._subscribing = False
        self._retry_at = 0.0

    def get(self, workstream_id: str) -> Workstream | None:
        kept = self._fresh(workstream_id)
        if kept is not None:
            return kept
        self._listen()
        # One load at a time: a herd's thousand hellos find the copy the first of them made.
        with self._loading:
            kept = self._fresh(workstream_id)
            if kept is not None:
                return kept
            with self._lock:
                generation = self._generation
            workstream = _load(workstream_id)
            if workstream is not None:
                with self._lock:
                    if generation == self._generation:
                        self._rows[workstream_id] = (time.monotonic(), workstream)
            return workstream

    def drop(self) -> None:
        with self._lock:
            self._generation += 1
            self._rows.clear()

    def _fresh(self, workstream_id: str) -> Workstream | None:
        with self._lock:
            kept = self._rows.get(workstream_id)
        if kept is None or time.monotonic() - kept[0] > MAX_AGE_SECONDS:
            return None
        return kept[1]

    def _heard_of_changes(self) -> bool:
        subscription = self._subscription
        return subscription is not None and not subscription.resyncing and self._hub is events.hub

    def _listen(self) -> None:
        """Hear of changes, if this process does not yet: one caller tries to subscribe, at most once per
        MAX_AGE_SECONDS (a frozen Redis takes seconds to say no), while the others go on. Until it
        succeeds, copies are kept for MAX_AGE_SECONDS like any change the hub cannot see."""
        if self._heard_of_changes():
            return
        with self._lock:
            if self._subscribing or time.monotonic() < self._retry_at:
                return
            self._subscribing = True
        try:
            self._subscribe()
        finally:
            with self._lock:
                self._subscribing = False

    def _subscribe(self) -> None:
        old = self._subscription
        if old is not None:
            old.on_delivery = None
            old.close()
        self._subscription, self._hub = None, None
        # Whatever was kept may have missed a change while nobody listened.
        self.drop()
        hub = events.hub
        try:
            subscription = hub.subscribe([CHANNEL])
        except Exception:
            self._retry_at = time.monotonic() + MAX_AGE_SECONDS
            return
        subscription.on_delivery = lambda: self._heard(subscription)
        self._subscription, self._hub = subscription, hub

    def _heard(self, subscription: events.Subscription) -> None:
        # A resync means changes may have been missed: the copies go, and the next load listens anew.
        subscription.take()
        self.drop()


def _load(workstream_id: str) -> Workstream | None:
    # A session of its own, closed at once: what it loaded stays readable and belongs to no session.
    with Session(db.engine) as session:
        return session.scalar(
            select(Workstream)
            .where(Workstream.id == workstream_id)
            .options(selectinload(Workstream.auth_setting).selectinload(AuthSetting.keys))
        )


def workstream(workstream_id: str | None) -> Workstream | None:
    """The process's copy of a workstream (loaded now if it has none fresh); None if there is none."""
    if not workstream_id:
        return None
    return current_app.extensions["workstream_copies"].get(workstream_id)


def init_app(app: Flask) -> None:
    app.extensions["workstream_copies"] = Copies()


def _announce(session: Session) -> None:
    if not session.info.get(_ANNOUNCED):
        session.info[_ANNOUNCED] = True
        events.emit(session, [CHANNEL], _CHANGED)


_ANNOUNCED = "persistent_chat_settings_changed"


@event.listens_for(Session, "before_flush")
def _settings_flushed(session: Session, _context, _instances) -> None:
    if any(isinstance(row, _SETTINGS) for row in (*session.new, *session.dirty, *session.deleted)):
        _announce(session)


@event.listens_for(Session, "do_orm_execute")
def _settings_updated_in_bulk(state: ORMExecuteState) -> None:
    table = getattr(state.statement, "table", None)
    if (state.is_update or state.is_delete) and getattr(table, "name", None) in _TABLES:
        _announce(state.session)


@event.listens_for(Session, "after_commit")
@event.listens_for(Session, "after_soft_rollback")
def _forget_announced(session: Session, *_args) -> None:
    session.info.pop(_ANNOUNCED, None)
