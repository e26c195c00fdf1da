"""Customers' data from the command line: `persistent-chat export-customer` and `erase-customer`."""

from pathlib import Path

import click
from flask import Flask

from . import privacy
from .errors import ChatError
from .models import Customer


def _select(customer_id: int | None, auth_setting_id: int | None, sub: str | None, email: str | None) -> list[Customer]:
    try:
        if customer_id is not None:
            return [privacy.get(customer_id)]
        return privacy.find(auth_setting_id, sub, email)
    except ChatError as error:
        raise click.ClickException(error.message) from error


def _selection(command):
    for option in reversed(
        [
            click.option("--id", "customer_id", type=int, help="The customer's id."),
            click.option("--auth-setting", "auth_setting_id", type=int, help="With --sub: who the site says."),
            click.option("--sub", help="The customer tokens' sub claim."),
            click.option("--email", help="Every customer with this email address."),
        ]
    ):
        command = option(command)
    return command


def register(app: Flask) -> None:
    @app.cli.command("export-customer")
    @_selection
    @click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True, help="ZIP file.")
    def export_customer(customer_id, auth_setting_id, sub, email, output: Path) -> None:
        """Write everything stored about a customer to a ZIP (JSON and readable transcripts)."""
        found = _select(customer_id, auth_setting_id, sub, email)
        if not found:
            raise click.ClickException("No such customer.")
        for customer in found:
            path = output if len(found) == 1 else output.with_name(f"{output.stem}-{customer.id}{output.suffix}")
            path.write_bytes(privacy.export(customer, None))
            click.echo(f"Exported customer {customer.id} to {path}.")

    @app.cli.command("erase-customer")
    @_selection
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def erase_customer(customer_id, auth_setting_id, sub, email, yes: bool) -> None:
        """Delete a customer and all their conversations, for good."""
        found = _select(customer_id, auth_setting_id, sub, email)
        if not found:
            raise click.ClickException("No such customer.")
        if not yes:
            click.confirm(f"Erase {len(found)} customer(s) and all their conversations for good?", abort=True)
        for customer in found:
            erased_id = customer.id
            counts = privacy.erase(customer, None)
            click.echo(f"Erased customer {erased_id}: {counts['conversations']} conversation(s).")
