"""Canned responses: prepared answers an agent inserts with `/shortcut` in the reply box.

Shared ones (no owner) are kept by admins; every agent keeps their own. Each has a language, or none
for any; the console picks the one for the conversation's language and fills its placeholders
(`{CustomerName}`, `{AgentName}`, the customer's context variables) when inserting it.
"""

import re

import click
from flask import Flask
from sqlalchemy import func, or_, select

from . import automated_messages, clock, conversations
from .errors import ChatError, not_found
from .extensions import db
from .models import Agent, CannedResponse

_SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
# An agent's list is read whole into the console; this keeps it a page, not a dump.
MAX_PER_OWNER = 500


def payload(item: CannedResponse) -> dict:
    return {
        "id": item.id,
        "shortcut": item.shortcut,
        "locale": item.locale,
        "body": item.body,
        "shared": item.agent_id is None,
        "agent_id": item.agent_id,
    }


def visible_to(agent: Agent) -> list[CannedResponse]:
    """The shared ones and the agent's own, by shortcut, then language (any-language ones last, on both
    databases: they sort NULLs differently)."""
    return list(
        db.session.scalars(
            select(CannedResponse)
            .where(or_(CannedResponse.agent_id.is_(None), CannedResponse.agent_id == agent.id))
            .order_by(
                CannedResponse.shortcut,
                CannedResponse.locale.is_(None),
                CannedResponse.locale,
                CannedResponse.id,
            )
            .limit(2 * MAX_PER_OWNER)
        )
    )


def _shortcut(value: object) -> str:
    if not isinstance(value, str):
        raise ChatError(400, "invalid_request", "shortcut must be a string.")
    shortcut = value.strip().removeprefix("/").lower()
    if not _SHORTCUT.fullmatch(shortcut):
        raise ChatError(
            400, "invalid_shortcut", "A shortcut is 1 to 32 lowercase letters, digits, - or _, starting with one."
        )
    return shortcut


def _locale(value: object) -> str | None:
    if value is None or value == "":
        return None
    return automated_messages.language(automated_messages.validate_locale(value))


def _owner(actor: Agent | None, shared: object) -> int | None:
    """The owner's id: None for a shared one, which only an admin (or the CLI, actor None) may keep."""
    if not isinstance(shared, bool):
        raise ChatError(400, "invalid_request", "shared must be true or false.")
    if actor is None:
        return None
    if shared and actor.role != "admin":
        raise ChatError(403, "forbidden", "Only admins keep the shared canned responses.")
    return None if shared else actor.id


def _check_free(owner: int | None, shortcut: str, locale: str | None, but: int | None = None) -> None:
    query = select(CannedResponse.id).where(
        CannedResponse.agent_id.is_(None) if owner is None else CannedResponse.agent_id == owner,
        CannedResponse.shortcut == shortcut,
        CannedResponse.locale.is_(None) if locale is None else CannedResponse.locale == locale,
    )
    if but is not None:
        query = query.where(CannedResponse.id != but)
    if db.session.scalar(query) is not None:
        raise ChatError(409, "duplicate_shortcut", f"/{shortcut} already exists in that language.")


def create(actor: Agent | None, data: dict) -> CannedResponse:
    """`actor` None is the CLI, which keeps shared ones."""
    owner = _owner(actor, data.get("shared", actor is None))
    shortcut = _shortcut(data.get("shortcut"))
    locale = _locale(data.get("locale"))
    body = conversations.validate_body(data.get("body"))
    _check_free(owner, shortcut, locale)
    count = db.session.scalar(
        select(func.count(CannedResponse.id)).where(
            CannedResponse.agent_id.is_(None) if owner is None else CannedResponse.agent_id == owner
        )
    )
    if count >= MAX_PER_OWNER:
        raise ChatError(409, "too_many", f"At most {MAX_PER_OWNER} canned responses per owner.")
    now = clock.now()
    item = CannedResponse(agent_id=owner, shortcut=shortcut, locale=locale, body=body, created_at=now, updated_at=now)
    db.session.add(item)
    db.session.commit()
    return item


def _editable(actor: Agent | None, item_id: int) -> CannedResponse:
    item = db.session.get(CannedResponse, item_id)
    if item is None or (actor is not None and item.agent_id not in (None, actor.id)):
        raise not_found()
    if actor is not None and item.agent_id is None and actor.role != "admin":
        raise ChatError(403, "forbidden", "Only admins change the shared canned responses.")
    return item


def update(actor: Agent | None, item_id: int, data: dict) -> CannedResponse:
    item = _editable(actor, item_id)
    shortcut = _shortcut(data["shortcut"]) if "shortcut" in data else item.shortcut
    locale = _locale(data["locale"]) if "locale" in data else item.locale
    body = conversations.validate_body(data["body"]) if "body" in data else item.body
    _check_free(item.agent_id, shortcut, locale, but=item.id)
    item.shortcut, item.locale, item.body = shortcut, locale, body
    item.updated_at = clock.now()
    db.session.commit()
    return item


def delete(actor: Agent | None, item_id: int) -> None:
    db.session.delete(_editable(actor, item_id))
    db.session.commit()


def register_cli(app: Flask) -> None:
    @app.cli.group("canned")
    def canned() -> None:
        """The shared canned responses."""

    @canned.command("list")
    def list_shared() -> None:
        """List the shared canned responses."""
        for item in db.session.scalars(
            select(CannedResponse).where(CannedResponse.agent_id.is_(None)).order_by(CannedResponse.shortcut)
        ):
            click.echo(f"{item.id}\t/{item.shortcut}\t{item.locale or '*'}\t{item.body}")

    @canned.command("add")
    @click.argument("shortcut")
    @click.argument("body")
    @click.option("--locale", help="The language it is for (e.g. fi); any language when not given.")
    def add(shortcut: str, body: str, locale: str | None) -> None:
        """Add a shared canned response."""
        try:
            item = create(None, {"shortcut": shortcut, "body": body, "locale": locale})
        except ChatError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Added /{item.shortcut} (id {item.id}).")

    @canned.command("delete")
    @click.argument("item_id", type=int)
    def remove(item_id: int) -> None:
        """Delete a shared canned response."""
        item = db.session.get(CannedResponse, item_id)
        if item is None or item.agent_id is not None:
            raise click.ClickException(f"No shared canned response {item_id}.")
        delete(None, item_id)
        click.echo(f"Deleted /{item.shortcut}.")
