"""Webhook commands: `persistent-chat create-webhook`, `list-webhooks`, `webhook-deliveries`, `redeliver`."""

import click
from flask import Flask
from sqlalchemy import select

from . import webhooks
from .errors import ChatError
from .extensions import db
from .models import Webhook


def _webhook(webhook_id: int) -> Webhook:
    try:
        return webhooks.get(webhook_id)
    except ChatError as error:
        raise click.ClickException(f"No webhook {webhook_id}.") from error


def register(app: Flask) -> None:
    @app.cli.command("create-webhook")
    @click.argument("workstream_id")
    @click.argument("url")
    @click.option(
        "--event", "events", multiple=True, required=True, type=click.Choice(webhooks.EVENTS), help="Repeatable."
    )
    def create_webhook(workstream_id: str, url: str, events: tuple[str, ...]) -> None:
        """Send a workstream's events to URL; prints the signing secret (shown only now)."""
        try:
            webhook = webhooks.create(workstream_id, {"url": url, "events": list(events)})
        except ChatError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Created webhook {webhook.id} for workstream {workstream_id}.")
        click.echo(f"Signing secret: {webhook.secret}")

    @app.cli.command("list-webhooks")
    @click.argument("workstream_id", required=False)
    def list_webhooks(workstream_id: str | None) -> None:
        """Webhooks (of one workstream, when given): id, state, events, URL."""
        query = select(Webhook).order_by(Webhook.id)
        if workstream_id:
            query = query.where(Webhook.workstream_id == workstream_id)
        for w in db.session.scalars(query):
            state = "on" if w.active else f"off ({w.disabled_reason})"
            click.echo(f"{w.id}\t{w.workstream_id}\t{state}\t{','.join(w.events.split())}\t{w.url}")

    @app.cli.command("webhook-deliveries")
    @click.argument("webhook_id", type=int)
    def webhook_deliveries(webhook_id: int) -> None:
        """A webhook's latest deliveries: id, event, status, attempts, response code or error."""
        for d in webhooks.recent_deliveries(_webhook(webhook_id)):
            outcome = d.response_code if d.response_code is not None else (d.last_error or "")
            click.echo(f"{d.id}\t{d.event}\t{d.status}\t{d.attempts}\t{outcome}")

    @app.cli.command("redeliver-webhook")
    @click.argument("webhook_id", type=int)
    @click.argument("delivery_id", type=int)
    def redeliver_webhook(webhook_id: int, delivery_id: int) -> None:
        """Queue a past delivery again (same event id); the scheduler sends it."""
        try:
            row = webhooks.redeliver(_webhook(webhook_id), delivery_id)
        except ChatError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Queued delivery {row.id}.")
