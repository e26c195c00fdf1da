"""SQLite as the embedded default: WAL, write transactions that take the lock up front, waits for a lock
held by another process that yield to other greenlets, and one serving process per database.

SQLite's own busy wait (busy_timeout) sleeps inside the C library: under gevent it freezes every socket
of the process while a backup, the sqlite3 shell or a CLI command holds the write lock. So the busy
timeout is zero once a connection is open, and BEGIN IMMEDIATE is retried here with a sleep that
yields, up to a deadline; only the requests that need the database wait, and they end with
`DatabaseBusy` (HTTP 503, a `server_error` frame on a socket) rather than hang.
"""

import fcntl
import os
import sqlite3
import time
from pathlib import Path

from flask import Flask, jsonify
from sqlalchemy import event
from sqlalchemy.engine import Engine

# Beside the database file (instance/chat.db.serve-lock by default).
SERVE_LOCK_SUFFIX = ".serve-lock"


class DatabaseBusy(Exception):
    """Another process held SQLite's write lock for longer than SQLITE_LOCK_WAIT_SECONDS."""


def configure(app: Flask, engine: Engine) -> None:
    wait = app.config.get("SQLITE_LOCK_WAIT_SECONDS", 10.0)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Opening may meet the brief exclusive lock of a closing connection's checkpoint: a short wait,
        # once per connection. After that every wait is begin_immediate's.
        cursor.execute("PRAGMA busy_timeout=100")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue here instead of one failing with
        # "database is locked" when it upgrades a read lock halfway through.
        begin_immediate(connection.connection.dbapi_connection, wait)

    @app.errorhandler(DatabaseBusy)
    def busy(error: DatabaseBusy):
        body = {"error": {"code": "database_busy", "message": str(error), "retry_after": 5}}
        return jsonify(body), 503, {"Retry-After": "5"}


def begin_immediate(dbapi_connection: sqlite3.Connection, wait: float) -> None:
    """BEGIN IMMEDIATE, retried while another connection holds the write lock; `time.sleep` is gevent's
    under the server's monkey-patching, so the wait lets every other greenlet run."""
    deadline = time.monotonic() + wait
    delay = 0.002
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            # The primary code: extended ones (SQLITE_BUSY_RECOVERY, …) are busy too.
            if error.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
            if time.monotonic() + delay > deadline:
                raise DatabaseBusy(
                    f"The database stayed locked by another process for {wait:g} s; try again shortly."
                ) from error
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def hold_serve_lock(database: Path) -> int | None:
    """Lock the database for this serving process and what it execs (gunicorn and its workers inherit
    the descriptor, and the lock goes when the last of them exits); None when another serve holds it."""
    database.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(database.with_name(database.name + SERVE_LOCK_SUFFIX), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.set_inheritable(fd, True)
    return fd
