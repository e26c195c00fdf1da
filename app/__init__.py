"""Persistent Chat: a self-hostable customer chat whose conversations persist across devices and days."""

import os
from pathlib import Path

from flask import Flask, request
from sqlalchemy import event

from . import clock, config, errors, events
from .extensions import csrf, db, login, migrate, sock

ROOT = Path(__file__).resolve().parent.parent


def create_app(config_overrides: dict | None = None) -> Flask:
    """The application. Settings come from the environment (config.py); `config_overrides` wins, and its
    INSTANCE_PATH (else $PERSISTENT_CHAT_INSTANCE, else ./instance) holds the SQLite file and secrets."""
    overrides = dict(config_overrides or {})
    instance = Path(
        overrides.pop("INSTANCE_PATH", None) or os.environ.get("PERSISTENT_CHAT_INSTANCE") or ROOT / "instance"
    ).resolve()
    app = Flask(
        __name__,
        instance_path=str(instance),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(config.from_environment(instance))
    app.config.update(overrides)
    if os.environ.get("PERSISTENT_CHAT_CLOCK_OFFSET_FILE"):
        clock.use_offset_file(os.environ["PERSISTENT_CHAT_CLOCK_OFFSET_FILE"])

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
    login.init_app(app)
    sock.init_app(app)
    csrf.init_app(app)
    errors.register(app)
    events.configure(app)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _tune_sqlite(db.engine)

    @app.before_request
    def refuse_websocket_compression() -> None:
        # simple-websocket accepts permessage-deflate whenever offered and keeps ~100 KiB of zlib state
        # per connection; hiding the offer keeps idle sockets cheap.
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    from . import admin, cli, console, demo, email_links, server_api, widget_api

    app.register_blueprint(widget_api.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(demo.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(email_links.bp)
    app.register_blueprint(server_api.bp)
    cli.register(app)
    return app


def _tune_sqlite(engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own handling defers it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout instead of one
        # failing with "database is locked" when it upgrades a read lock.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
