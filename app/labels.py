"""Labels on conversations: admins keep the list (a name and a colour), agents put them on. Changes to
the list go to the audit log."""

import re

import click
from flask import Flask
from sqlalchemy import delete, select

from . import audit, clock, conversations, lifecycle, payloads
from .errors import ChatError, not_found
from .extensions import db
from .models import Agent, ConversationLabel, Label

_COLOUR = re.compile(r"#[0-9a-f]{6}")
MAX_LABELS = 200


def payload(label: Label) -> dict:
    return {"id": label.id, "name": label.name, "colour": label.colour}


def describe(label: Label) -> dict:
    return {"name": label.name, "colour": label.colour}


def all_labels() -> list[Label]:
    return list(db.session.scalars(select(Label).order_by(Label.name).limit(MAX_LABELS)))


def of(conversation_id: int) -> list[Label]:
    return payloads.labels_of(conversation_id)


def _admin(actor: Agent | None) -> None:
    if actor is not None and actor.role != "admin":
        raise ChatError(403, "forbidden", "Only admins keep the list of labels.")


def _fields(data: dict) -> tuple[str, str]:
    name, colour = data.get("name"), data.get("colour", "#5b6770")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 40:
        raise ChatError(400, "invalid_request", "name must be 1 to 40 characters.")
    if not isinstance(colour, str) or not _COLOUR.fullmatch(colour.lower()):
        raise ChatError(400, "invalid_request", "colour must be #rrggbb.")
    return name.strip(), colour.lower()


def _check_free(name: str, but: int | None = None) -> None:
    query = select(Label.id).where(Label.name == name)
    if but is not None:
        query = query.where(Label.id != but)
    if db.session.scalar(query) is not None:
        raise ChatError(409, "duplicate_label", f"There already is a label {name!r}.")


def create(actor: Agent | None, data: dict) -> Label:
    """`actor` None is the command line."""
    _admin(actor)
    name, colour = _fields(data)
    _check_free(name)
    if len(all_labels()) >= MAX_LABELS:
        raise ChatError(409, "too_many", f"At most {MAX_LABELS} labels.")
    label = Label(name=name, colour=colour, created_at=clock.now())
    db.session.add(label)
    audit.record("label.create", label, None, describe(label))
    db.session.commit()
    return label


def find(label_id: int) -> Label:
    label = db.session.get(Label, label_id)
    if label is None:
        raise not_found("label")
    return label


def update(actor: Agent | None, label_id: int, data: dict) -> Label:
    """A new name or colour; the conversations that carry the label keep it."""
    _admin(actor)
    label = find(label_id)
    name, colour = _fields({**describe(label), **data})
    _check_free(name, but=label.id)
    before = describe(label)
    label.name, label.colour = name, colour
    audit.record("label.update", label, before, describe(label))
    db.session.commit()
    return label


def remove(actor: Agent | None, label_id: int) -> None:
    _admin(actor)
    label = find(label_id)
    db.session.execute(delete(ConversationLabel).where(ConversationLabel.label_id == label.id))
    audit.record("label.delete", label, describe(label), None)
    db.session.delete(label)
    db.session.commit()


def put_on(agent: Agent, conversation_id: int, label_ids: object) -> list[Label]:
    """Set the conversation's labels to exactly these; every console learns of it."""
    if not isinstance(label_ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in label_ids):
        raise ChatError(400, "invalid_request", "label_ids must be a list of label ids.")
    conversation = conversations.agent_conversation(conversation_id)
    wanted = set(label_ids)
    known = set(db.session.scalars(select(Label.id).where(Label.id.in_(wanted))))
    if known != wanted:
        raise ChatError(400, "unknown_label", f"No label {min(wanted - known)}.")
    db.session.execute(delete(ConversationLabel).where(ConversationLabel.conversation_id == conversation.id))
    db.session.add_all(ConversationLabel(conversation_id=conversation.id, label_id=i) for i in sorted(wanted))
    lifecycle.announce(conversation, widget=False)
    db.session.commit()
    return of(conversation.id)


def register_cli(app: Flask) -> None:
    @app.cli.group("labels")
    def labels() -> None:
        """The labels agents put on conversations."""

    @labels.command("list")
    def list_labels() -> None:
        """List the labels."""
        for label in all_labels():
            click.echo(f"{label.id}\t{label.colour}\t{label.name}")

    @labels.command("add")
    @click.argument("name")
    @click.option("--colour", default="#5b6770", show_default=True, help="#rrggbb")
    def add(name: str, colour: str) -> None:
        """Add a label."""
        try:
            label = create(None, {"name": name, "colour": colour})
        except ChatError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Added label {label.name} (id {label.id}).")
