"""Persistent Chat: a self-hostable customer chat whose conversations persist across devices and days."""

import os
from pathlib import Path

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    admission,
    attachments,
    checked,
    clock,
    config,
    errors,
    events,
    rates,
    security_headers,
    sqlite,
    workstream_copies,
)
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

    # Before every other hook: see admission.read_body_first.
    app.before_request(admission.read_body_first)
    if app.config["TRUSTED_PROXIES"]:
        # Limits key on the client's address, which only the proxies in front know.
        proxies = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)
    login.init_app(app)
    sock.init_app(app)
    csrf.init_app(app)
    errors.register(app)
    checked.register(app)
    # Ahead even of the checked-input layer, which opens the body (see attachments.lift_body_limit).
    app.before_request_funcs.setdefault(None, []).insert(0, attachments.lift_body_limit)
    security_headers.register(app)
    events.configure(app)
    rates.init_app(app)
    admission.init_app(app)
    workstream_copies.init_app(app)

    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            sqlite.configure(app, db.engine)

    @app.before_request
    def refuse_websocket_compression() -> None:
        # simple-websocket accepts permessage-deflate whenever offered and keeps ~100 KiB of zlib state
        # per connection; hiding the offer keeps idle sockets cheap.
        request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)

    from . import admin, attachment_files, cli, console, demo, email_links, openapi, server_api, widget_api

    app.register_blueprint(widget_api.bp)
    app.register_blueprint(console.bp)
    if app.config["DEMO"]:
        app.register_blueprint(demo.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(email_links.bp)
    app.register_blueprint(attachment_files.bp)
    app.register_blueprint(server_api.bp)
    app.register_blueprint(openapi.bp)
    cli.register(app)
    return app
