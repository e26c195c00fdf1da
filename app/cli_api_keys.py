"""API key commands: `persistent-chat create-api-key`, `list-api-keys`, `revoke-api-key`."""

import click
from flask import Flask
from sqlalchemy import select

from . import api_keys
from .errors import ChatError
from .extensions import db
from .models import ApiKey


def register(app: Flask) -> None:
    @app.cli.command("create-api-key")
    @click.argument("name")
    @click.option("--workstream", "workstream_ids", multiple=True, required=True, help="Repeatable.")
    def create_api_key(name: str, workstream_ids: tuple[str, ...]) -> None:
        """A key for the site's backend, for these workstreams; printed once, stored as a hash."""
        try:
            row, key = api_keys.create({"name": name, "workstream_ids": list(workstream_ids)})
        except ChatError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Created API key {row.id} ({api_keys.PREFIX}{row.prefix}).")
        click.echo(f"Key: {key}")

    @app.cli.command("list-api-keys")
    def list_api_keys() -> None:
        """API keys: id, prefix, name, workstreams, last used, revoked."""
        for k in db.session.scalars(select(ApiKey).order_by(ApiKey.id)):
            d = api_keys.describe(k)
            state = f"revoked {d['revoked_at']}" if k.revoked_at else f"last used {d['last_used_at'] or 'never'}"
            click.echo(f"{k.id}\t{d['prefix']}\t{k.name}\t{','.join(d['workstream_ids'])}\t{state}")

    @app.cli.command("revoke-api-key")
    @click.argument("key_id", type=int)
    def revoke_api_key(key_id: int) -> None:
        """Stop accepting a key, for good."""
        try:
            api_keys.revoke(api_keys.get(key_id))
        except ChatError as error:
            raise click.ClickException(f"No API key {key_id}.") from error
        click.echo(f"Revoked API key {key_id}.")
