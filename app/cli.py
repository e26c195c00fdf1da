"""flask commands: `persistent-chat COMMAND` or `flask --app app COMMAND`."""

import os
import secrets
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup
from sqlalchemy import select

from .agents import add_agent
from .extensions import db
from .models import MODES, ROLES, Agent, AuthSetting, Workstream

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000


def server_url() -> str:
    return os.environ.get("PUBLIC_URL") or (
        f"http://{os.environ.get('HOST', DEFAULT_HOST)}:{os.environ.get('PORT', DEFAULT_PORT)}"
    )


def register(app: Flask) -> None:
    @app.cli.command("create-agent")
    @click.argument("email")
    @click.option("--name", required=True, help="Name shown to customers.")
    @click.option("--role", type=click.Choice(ROLES), default="agent")
    @click.option("--password", help="Generated and printed when not given.")
    def create_agent(email: str, name: str, role: str, password: str | None) -> None:
        """Create an agent who signs in to the console."""
        if "@" not in email:
            raise click.BadParameter("must be an email address", param_hint="EMAIL")
        if db.session.scalar(select(Agent).where(Agent.email == email.strip().lower())):
            raise click.ClickException(f"An agent with email {email} already exists.")
        agent, generated = add_agent(email, name, role, password)
        click.echo(f"Created {role} {agent.email} (id {agent.id}).")
        if not password:
            click.echo(f"Password: {generated}")

    @app.cli.command("create-auth-setting")
    @click.argument("name")
    @click.option("--secret", help="HS256 shared secret; generated and printed when not given.")
    @click.option("--issuer", help="Required iss claim, when set.")
    @click.option("--client-function", default="getChatToken", show_default=True)
    def create_auth_setting(name: str, secret: str | None, issuer: str | None, client_function: str) -> None:
        """Create an authentication setting: how customer tokens are verified."""
        setting = AuthSetting(
            name=name,
            hs256_secret=secret or secrets.token_urlsafe(32),
            issuer=issuer,
            client_function=client_function,
        )
        db.session.add(setting)
        db.session.commit()
        click.echo(f"Created authentication setting {setting.id}.")
        if not secret:
            click.echo(f"HS256 secret: {setting.hs256_secret}")

    @app.cli.command("create-workstream")
    @click.argument("name")
    @click.option("--mode", type=click.Choice(MODES), default="persistent", show_default=True)
    @click.option("--auth-setting", "auth_setting_id", type=int, help="Required for persistent workstreams.")
    @click.option("--origin", "origins", multiple=True, help="An origin allowed to embed it (repeatable).")
    def create_workstream(name: str, mode: str, auth_setting_id: int | None, origins: tuple[str, ...]) -> None:
        """Create a workstream and print its embed snippet."""
        setting = db.session.get(AuthSetting, auth_setting_id) if auth_setting_id else None
        if auth_setting_id and setting is None:
            raise click.ClickException(f"No authentication setting {auth_setting_id}.")
        if mode == "persistent" and setting is None:
            raise click.ClickException("A persistent workstream needs --auth-setting.")
        workstream = Workstream(name=name, mode=mode, auth_setting=setting, allowed_origins=" ".join(origins))
        db.session.add(workstream)
        db.session.commit()
        click.echo(f"Created workstream {workstream.id}.")
        click.echo(workstream.embed_snippet(server_url()))

    @app.cli.command("demo")
    def demo() -> None:
        """Create the demo data if there is none, and print where to go."""
        from .demo import ensure

        ensure(server_url(), click.echo)

    @app.cli.command("serve")
    @click.option("--workers", type=int, default=1, show_default=True)
    def serve(workers: int) -> None:
        """Serve with gunicorn's gevent worker on HOST:PORT (default 127.0.0.1:5000)."""
        if workers > 1 and not os.environ.get("REDIS_URL"):
            raise click.ClickException("Several workers share events through Redis: set REDIS_URL.")
        bind = f"{os.environ.get('HOST', DEFAULT_HOST)}:{os.environ.get('PORT', DEFAULT_PORT)}"
        args = [
            sys.executable, "-m", "gunicorn", "app.wsgi:app",
            "--worker-class", "gevent",
            "--workers", str(workers),
            # gunicorn's default of 1,000 would leave further websocket handshakes hanging.
            "--worker-connections", "10000",
            "--bind", bind,
            "--graceful-timeout", "5",
            # Its default path is per user: two servers on one machine would fight over it.
            "--no-control-socket",
        ]  # fmt: skip
        os.execv(sys.executable, args)


def main() -> None:
    from . import create_app

    FlaskGroup(create_app=create_app)(prog_name="persistent-chat")
