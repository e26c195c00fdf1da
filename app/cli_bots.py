"""Bot commands: `persistent-chat set-bot` and `remove-bot`."""

import click
from flask import Flask

from . import bots, workstreams
from .errors import ChatError
from .extensions import db
from .models import Workstream


def _workstream(workstream_id: str) -> Workstream:
    workstream = db.session.get(Workstream, workstream_id)
    if workstream is None:
        raise click.ClickException(f"No workstream {workstream_id}.")
    return workstream


def _update(workstream: Workstream, bot: dict | None) -> None:
    try:
        workstreams.update(workstream, {"bot": bot})
    except ChatError as error:
        raise click.ClickException(error.message) from error


def register(app: Flask) -> None:
    @app.cli.command("set-bot")
    @click.argument("workstream_id")
    @click.option("--name", required=True, help="What customers see the bot as.")
    @click.option("--webhook", "webhook_id", type=int, required=True, help="The workstream's webhook the bot hears.")
    @click.option("--api-key", "api_key_id", type=int, required=True, help="The API key the bot answers with.")
    @click.option(
        "--answer-seconds",
        type=int,
        default=bots.DEFAULT_ANSWER_SECONDS,
        show_default=True,
        help="Hand over when the bot has not answered the customer within this.",
    )
    def set_bot(workstream_id: str, name: str, webhook_id: int, api_key_id: int, answer_seconds: int) -> None:
        """New conversations of the workstream go to this bot first; it hands over to people."""
        workstream = _workstream(workstream_id)
        bot = {"name": name, "webhook_id": webhook_id, "api_key_id": api_key_id, "answer_seconds": answer_seconds}
        _update(workstream, bot)
        click.echo(f"{name} answers new conversations of {workstream.name} first.")

    @app.cli.command("remove-bot")
    @click.argument("workstream_id")
    def remove_bot(workstream_id: str) -> None:
        """New conversations go to people; the scheduler hands over those the bot still has."""
        workstream = _workstream(workstream_id)
        _update(workstream, None)
        click.echo(f"{workstream.name} has no bot.")
