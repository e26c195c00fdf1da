"""Canned responses: prepared answers an agent inserts with `/shortcut` in the reply box.

Shared ones (no owner) are kept by admins; every agent keeps their own. Each has a language, or none
for any, and may be for one workstream only; the console picks the one for the conversation's
workstream and language and fills its placeholders (`{CustomerName}`, `{AgentName}`, the customer's
context variables) when inserting it. Changes to the shared ones go to the audit log.
"""

import re

import click
from flask import Flask
from sqlalchemy import func, or_, select

from . import audit, automated_messages, clock, conversations
from .errors import ChatError, not_found
from .extensions import db
from .models import Agent, CannedResponse, Workstream

_SHORTCUT = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# What the console fills; a name starting with a lower-case letter is a context variable.
PLACEHOLDERS = ("CustomerName", "AgentName")
# An agent's list is read whole into the console; this keeps it a page, not a dump.
MAX_PER_OWNER = 500


def payload(item: CannedResponse) -> dict:
    return {
        "id": item.id,
        "shortcut": item.shortcut,
        "locale": item.locale,
        "body": item.body,
        "workstream_id": item.workstream_id,
        "shared": item.agent_id is None,
        "agent_id": item.agent_id,
    }


def describe(item: CannedResponse) -> dict:
    """What the audit log keeps of a shared one."""
    return {"shortcut": item.shortcut, "locale": item.locale, "workstream_id": item.workstream_id, "body": item.body}


def _listed(owned, limit: int = MAX_PER_OWNER) -> list[CannedResponse]:
    """By shortcut, then language (any-language ones last, on both databases: they sort NULLs
    differently)."""
    return list(
        db.session.scalars(
            select(CannedResponse)
            .where(owned)
            .order_by(
                CannedResponse.shortcut,
                CannedResponse.locale.is_(None),
                CannedResponse.locale,
                CannedResponse.id,
            )
            .limit(limit)
        )
    )


def visible_to(agent: Agent) -> list[CannedResponse]:
    """The shared ones and the agent's own."""
    return _listed(or_(CannedResponse.agent_id.is_(None), CannedResponse.agent_id == agent.id), 2 * MAX_PER_OWNER)


def shared() -> list[CannedResponse]:
    return _listed(CannedResponse.agent_id.is_(None))


def own(agent: Agent) -> list[CannedResponse]:
    return _listed(CannedResponse.agent_id == agent.id)


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


def _body(value: object) -> str:
    body = conversations.validate_body(value)
    for name in _PLACEHOLDER.findall(body):
        if name[0].isupper() and name not in PLACEHOLDERS:
            raise ChatError(
                400,
                "unknown_placeholder",
                f"Unknown placeholder {{{name}}}: canned responses know {{CustomerName}}, {{AgentName}}"
                " and the customer's context variables by name (starting with a lower-case letter).",
            )
    return body


def _workstream(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or db.session.get(Workstream, value) is None:
        raise ChatError(400, "unknown_workstream", "workstream_id must be one of the workstreams, or null for all.")
    return value


def _owner(actor: Agent | None, shared: object) -> int | None:
    """The owner's id: None for a shared one, which only an admin (or the CLI, actor None) may keep."""
    if not isinstance(shared, bool):
        raise ChatError(400, "invalid_request", "shared must be true or false.")
    if actor is None:
        return None
    if shared and actor.role != "admin":
        raise ChatError(403, "forbidden", "Only admins keep the shared canned responses.")
    return None if shared else actor.id


def _check_free(
    owner: int | None, shortcut: str, locale: str | None, workstream_id: str | None, but: int | None = None
) -> None:
    query = select(CannedResponse.id).where(
        CannedResponse.agent_id.is_(None) if owner is None else CannedResponse.agent_id == owner,
        CannedResponse.shortcut == shortcut,
        CannedResponse.locale.is_(None) if locale is None else CannedResponse.locale == locale,
        CannedResponse.workstream_id.is_(None)
        if workstream_id is None
        else CannedResponse.workstream_id == workstream_id,
    )
    if but is not None:
        query = query.where(CannedResponse.id != but)
    if db.session.scalar(query) is not None:
        raise ChatError(409, "duplicate_shortcut", f"/{shortcut} already exists in that language and workstream.")


def create(actor: Agent | None, data: dict) -> CannedResponse:
    """`actor` None is the CLI, which keeps shared ones."""
    owner = _owner(actor, data.get("shared", actor is None))
    shortcut = _shortcut(data.get("shortcut"))
    locale = _locale(data.get("locale"))
    workstream_id = _workstream(data.get("workstream_id"))
    body = _body(data.get("body"))
    _check_free(owner, shortcut, locale, workstream_id)
    count = db.session.scalar(
        select(func.count(CannedResponse.id)).where(
            CannedResponse.agent_id.is_(None) if owner is None else CannedResponse.agent_id == owner
        )
    )
    if count >= MAX_PER_OWNER:
        raise ChatError(409, "too_many", f"At most {MAX_PER_OWNER} canned responses per owner.")
    now = clock.now()
    item = CannedResponse(
        agent_id=owner,
        workstream_id=workstream_id,
        shortcut=shortcut,
        locale=locale,
        body=body,
        created_at=now,
        updated_at=now,
    )
    db.session.add(item)
    if owner is None:
        audit.record("canned.create", item, None, describe(item))
    db.session.commit()
    return item


def find(actor: Agent | None, item_id: int) -> CannedResponse:
    """One the actor may change: a shared one (admins, and the CLI) or their own."""
    item = db.session.get(CannedResponse, item_id)
    if item is None or (actor is not None and item.agent_id not in (None, actor.id)):
        raise not_found("canned response")
    if actor is not None and item.agent_id is None and actor.role != "admin":
        raise ChatError(403, "forbidden", "Only admins change the shared canned responses.")
    return item


def update(actor: Agent | None, item_id: int, data: dict) -> CannedResponse:
    item = find(actor, item_id)
    shortcut = _shortcut(data["shortcut"]) if "shortcut" in data else item.shortcut
    locale = _locale(data["locale"]) if "locale" in data else item.locale
    workstream_id = _workstream(data["workstream_id"]) if "workstream_id" in data else item.workstream_id
    body = _body(data["body"]) if "body" in data else item.body
    _check_free(item.agent_id, shortcut, locale, workstream_id, but=item.id)
    before = describe(item)
    item.shortcut, item.locale, item.workstream_id, item.body = shortcut, locale, workstream_id, body
    item.updated_at = clock.now()
    if item.agent_id is None:
        audit.record("canned.update", item, before, describe(item))
    db.session.commit()
    return item


def delete(actor: Agent | None, item_id: int) -> None:
    item = find(actor, item_id)
    if item.agent_id is None:
        audit.record("canned.delete", item, describe(item), None)
    db.session.delete(item)
    db.session.commit()


def register_cli(app: Flask) -> None:
    @app.cli.group("canned")
    def canned() -> None:
        """The shared canned responses."""

    @canned.command("list")
    def list_shared() -> None:
        """List the shared canned responses."""
        for item in shared():
            click.echo(f"{item.id}\t/{item.shortcut}\t{item.locale or '*'}\t{item.workstream_id or '*'}\t{item.body}")

    @canned.command("add")
    @click.argument("shortcut")
    @click.argument("body")
    @click.option("--locale", help="The language it is for (e.g. fi); any language when not given.")
    @click.option("--workstream", help="The workstream's id it is for; every workstream when not given.")
    def add(shortcut: str, body: str, locale: str | None, workstream: str | None) -> None:
        """Add a shared canned response."""
        try:
            item = create(None, {"shortcut": shortcut, "body": body, "locale": locale, "workstream_id": workstream})
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
