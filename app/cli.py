"""flask commands: `persistent-chat COMMAND` or `flask --app app COMMAND`."""

import os
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup
from sqlalchemy import make_url

from . import (
    agents,
    auth_settings,
    canned,
    checked,
    cli_api_keys,
    cli_bots,
    cli_privacy,
    cli_webhooks,
    labels,
    passwords,
    sqlite,
    workstreams,
)
from .errors import ChatError
from .extensions import db
from .models import MODES, ROLES, Agent, AuthSetting

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000


def server_url() -> str:
    return os.environ.get("PUBLIC_URL") or (
        f"http://{os.environ.get('HOST', DEFAULT_HOST)}:{os.environ.get('PORT', DEFAULT_PORT)}"
    )


class BadArgument(click.ClickException):
    """One line on stderr ("Error: …") and exit status 2, the status of a usage error."""

    exit_code = 2


class _Command(click.Command):
    """Click's own usage errors (a wrong type, a missing option) also become one line, exit status 2."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:
            ctx = super().make_context(*args, **kwargs)
        except click.UsageError as error:
            raise BadArgument(error.format_message()) from error
        # Bytes the locale cannot decode arrive as lone surrogates, which no database column can store.
        for name, value in ctx.params.items():
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, str):
                    try:
                        checked.clean_text(item)
                    except ChatError as error:
                        raise BadArgument(f"{name}: {error.message}") from error
        return ctx


@contextmanager
def _refusals():
    """A refusal from the domain becomes a CLI error with the same message."""
    try:
        yield
    except ChatError as error:
        raise BadArgument(error.message) from error


PASSWORD_HELP = f"At least {passwords.MIN_LENGTH} characters; generated and printed when not given."
# Ids are int4 on PostgreSQL: a larger one is a usage error, not an overflow in the query.
ID = click.IntRange(1, checked.MAX_INT)
COUNT = click.IntRange(0, checked.MAX_INT)


def _text(file, option: str) -> str:
    """A file's text; a binary or otherwise unreadable file is a bad argument."""
    try:
        return checked.clean_text(file.read().decode("utf-8"), option)
    except UnicodeDecodeError as error:
        raise BadArgument(f"{option} is not a UTF-8 text file.") from error
    except ChatError as error:
        raise BadArgument(f"{option}: {error.message}") from error


def _setting(setting_id: int) -> AuthSetting:
    setting = db.session.get(AuthSetting, setting_id)
    if setting is None:
        raise BadArgument(f"No authentication setting {setting_id}.")
    return setting


def _agent(email: str) -> Agent:
    agent = agents.by_email(email)
    if agent is None:
        raise BadArgument(f"No agent with email {email}.")
    return agent


def register(app: Flask) -> None:
    command = partial(app.cli.command, cls=_Command)
    cli_api_keys.register(app)
    cli_bots.register(app)
    cli_privacy.register(app)
    cli_webhooks.register(app)
    canned.register_cli(app)
    labels.register_cli(app)

    @command("create-agent")
    @click.argument("email")
    @click.option("--name", required=True, help="Name shown to customers.")
    @click.option("--role", type=click.Choice(ROLES), default="agent")
    @click.option(
        "--password", help=f"At least {passwords.MIN_LENGTH} characters; generated and printed when not given."
    )
    def create_agent(email: str, name: str, role: str, password: str | None) -> None:
        """Create an agent who signs in to the console."""
        with _refusals():
            agent, generated = agents.add_agent(email, name, role, password)
        click.echo(f"Created {role} {agent.email} (id {agent.id}).")
        if not password:
            click.echo(f"Password: {generated}")

    @command("set-password")
    @click.argument("email")
    @click.option(
        "--password", help=f"At least {passwords.MIN_LENGTH} characters; generated and printed when not given."
    )
    def set_password(email: str, password: str | None) -> None:
        """Reset an agent's password; every session they have ends."""
        agent = _agent(email)
        new = password if password is not None else passwords.generate()
        with _refusals():
            agents.set_password(agent, new)
        click.echo(f"Changed the password of {agent.email}; their sessions have ended.")
        if password is None:
            click.echo(f"Password: {new}")

    @command("disable-agent")
    @click.argument("email")
    def disable_agent(email: str) -> None:
        """Sign an agent out everywhere and stop them signing in; their active conversations are requeued."""
        agent = _agent(email)
        with _refusals():
            agents.update(agent, {"disabled": True})
        click.echo(f"Disabled {agent.email}.")

    @command("enable-agent")
    @click.argument("email")
    def enable_agent(email: str) -> None:
        """Let a disabled agent sign in again."""
        agent = _agent(email)
        with _refusals():
            agents.update(agent, {"disabled": False})
        click.echo(f"Enabled {agent.email}.")

    @command("create-auth-setting")
    @click.argument("name")
    @click.option("--public-key", type=click.File("rb"), help="PEM public key (RS256 or ES256) the site signs with.")
    @click.option("--kid", default="1", show_default=True, help="The key's id (the tokens' kid header).")
    @click.option("--key-expires", help="When the key stops being accepted (ISO date).")
    @click.option("--secret", help="An HS256 shared secret instead of a key; generated when neither is given.")
    @click.option("--issuer", help="Required iss claim, when set.")
    @click.option("--client-function", default="getChatToken", show_default=True)
    @click.option(
        "--clock-skew",
        type=click.IntRange(0, checked.MAX_INT),
        default=60,
        show_default=True,
        help="Seconds of clock skew allowed.",
    )
    @click.option(
        "--max-lifetime",
        type=click.IntRange(0, checked.MAX_INT),
        default=86400,
        show_default=True,
        help="Longest token lifetime (s).",
    )
    def create_auth_setting(name, public_key, kid, key_expires, secret, issuer, client_function, clock_skew,
                            max_lifetime) -> None:  # fmt: skip
        """Create an authentication setting: how customer tokens are verified."""
        generated = secret is None and public_key is None
        keys = (
            [{"kid": kid, "public_key": _text(public_key, "--public-key"), "expires_at": key_expires}]
            if public_key
            else []
        )
        with _refusals():
            setting = auth_settings.create(
                name,
                client_function=client_function,
                issuer=issuer,
                hs256_secret=auth_settings.new_secret() if generated else secret,
                clock_skew_seconds=clock_skew,
                max_lifetime_seconds=max_lifetime,
                keys=keys,
            )
        click.echo(f"Created authentication setting {setting.id}.")
        if generated:
            click.echo(f"HS256 secret: {setting.hs256_secret}")

    @command("add-auth-key")
    @click.argument("setting_id", type=ID)
    @click.option("--kid", required=True, help="The key's id (the tokens' kid header).")
    @click.option("--public-key", type=click.File("rb"), required=True, help="PEM public key (RS256 or ES256).")
    @click.option("--expires", help="When the key stops being accepted (ISO date).")
    def add_auth_key(setting_id: int, kid: str, public_key, expires: str | None) -> None:
        """Add a public key to a setting (rotation: add the new key, move the site over, retire the old)."""
        with _refusals():
            key = auth_settings.add_key(_setting(setting_id), kid, _text(public_key, "--public-key"), expires)
        click.echo(f"Added {key.algorithm} key {key.kid!r} to authentication setting {setting_id}.")

    @command("retire-auth-key")
    @click.argument("setting_id", type=ID)
    @click.argument("kid")
    def retire_auth_key(setting_id: int, kid: str) -> None:
        """Stop accepting tokens signed with a key."""
        with _refusals():
            auth_settings.retire_key(_setting(setting_id), kid)
        click.echo(f"Retired key {kid!r} of authentication setting {setting_id}.")

    @command("create-workstream")
    @click.argument("name")
    @click.option("--mode", type=click.Choice(MODES), default="persistent", show_default=True)
    @click.option("--distribution", type=click.Choice(("push", "pick")), default="push", show_default=True)
    @click.option("--auth-setting", "auth_setting_id", type=ID, help="Required for persistent workstreams.")
    @click.option("--origin", "origins", multiple=True, help="An origin allowed to embed it (repeatable).")
    @click.option("--hours", "hours_file", type=click.File("rb"), help="Operating hours as JSON (see README).")
    @click.option(
        "--automated-messages", "messages_file", type=click.File("rb"), help="Automated messages as JSON (see README)."
    )
    @click.option("--notify-email-after", "notify_minutes", type=int, help="Minutes before an unread reply is emailed.")
    @click.option("--no-email", is_flag=True, help="Never email customers about unread replies.")
    @click.option("--return-url", help="The site's page with the widget, where emails link back to.")
    def create_workstream(
        name, mode, distribution, auth_setting_id, origins, hours_file, messages_file, notify_minutes, no_email,
        return_url,
    ) -> None:  # fmt: skip
        """Create a workstream and print its embed snippet."""
        data = {"name": name, "mode": mode, "distribution": distribution, "allowed_origins": list(origins)}
        if auth_setting_id is not None:
            data["auth_setting_id"] = auth_setting_id
        if no_email or notify_minutes is not None:
            data["notify_email_after_minutes"] = None if no_email else notify_minutes
        if return_url is not None:
            data["notify_return_url"] = return_url
        for field, option, file in (
            ("hours", "--hours", hours_file),
            ("automated_messages", "--automated-messages", messages_file),
        ):
            if file is not None:
                try:
                    data[field] = checked.loads(_text(file, option), option)
                except ChatError as e:
                    raise BadArgument(e.message) from e
        with _refusals():
            workstream = workstreams.create(data)
        click.echo(f"Created workstream {workstream.id}.")
        click.echo(workstream.embed_snippet(server_url()))

    @command("demo")
    def demo() -> None:
        """Create the demo data if there is none, and print where to go."""
        from .demo import ensure

        ensure(server_url(), click.echo)

    @command("serve")
    @click.option(
        "--workers",
        type=click.IntRange(1, 256),
        default=1,
        show_default=True,
        help="Processes; more than one needs REDIS_URL.",
    )
    @click.option(
        "--worker-connections",
        type=click.IntRange(1, 1_000_000),
        default=10_000,
        show_default=True,
        envvar="WORKER_CONNECTIONS",
        help="Open sockets per process, every kind counted (or WORKER_CONNECTIONS).",
    )
    @click.option("--demo", is_flag=True, help="Also serve the demo site (/demo/), as `make run` does.")
    def serve(workers: int, worker_connections: int, demo: bool) -> None:
        """Serve with gunicorn's gevent worker on HOST:PORT (default 127.0.0.1:5000)."""
        # The demo site signs tokens for its customers for anyone who asks: never on a real install.
        os.environ["PERSISTENT_CHAT_DEMO"] = "1" if demo else "0"
        if workers > 1 and not os.environ.get("REDIS_URL"):
            raise click.ClickException("Several workers share events through Redis: set REDIS_URL.")
        _one_serve_per_sqlite_folder()
        bind = f"{os.environ.get('HOST', DEFAULT_HOST)}:{os.environ.get('PORT', DEFAULT_PORT)}"
        args = [
            sys.executable, "-m", "gunicorn", "app.wsgi:app",
            "--worker-class", "gevent",
            "--workers", str(workers),
            # gunicorn's default of 1,000 would leave further websocket handshakes hanging.
            "--worker-connections", str(worker_connections),
            "--bind", bind,
            "--graceful-timeout", "5",
            # gunicorn reads a connection's first request under its keep-alive timeout (2 s by default):
            # in a herd of widgets reconnecting after a restart, handshakes that waited longer than that
            # for a busy worker were closed unanswered. And a deeper queue of connections not yet accepted.
            "--keep-alive", "20",
            "--backlog", "4096",
            # Its default path is per user: two servers on one machine would fight over it.
            "--no-control-socket",
        ]  # fmt: skip
        # Sockets that have not said hello may take only part of the connections (config.py).
        os.environ["PERSISTENT_CHAT_WORKER_CONNECTIONS"] = str(worker_connections)
        # gevent otherwise records which greenlet spawned which: a few KiB per idle socket for no use here.
        os.environ.setdefault("GEVENT_TRACK_GREENLET_TREE", "0")
        os.execv(sys.executable, args)


def _one_serve_per_sqlite_folder() -> None:
    """Two serves on one SQLite database without Redis would each hear only their own sockets' events."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if current_app.config.get("REDIS_URL") or url.get_backend_name() != "sqlite" or not url.database:
        return
    database = Path(url.database).resolve()
    if sqlite.hold_serve_lock(database) is None:
        click.echo(
            f"Error: another persistent-chat serve is already running on {database}. Without REDIS_URL "
            "there is one serve per SQLite database (each would only hear its own sockets' events): stop "
            "the other one, or set REDIS_URL on both.",
            err=True,
        )
        sys.exit(2)


def main() -> None:
    from . import create_app

    FlaskGroup(create_app=create_app)(prog_name="persistent-chat")
