"""The labels agents put on conversations: a name and a colour each. The pages call the same functions
as the console's JSON API and the CLI."""

from flask import redirect, request, url_for
from flask_login import current_user

from .. import labels
from ..errors import ChatError
from ..models import Label
from . import bp, forms
from .pages import admin_page, page

SECTION = "admin.labels"
FIELDS = ["name", "colour"]
ALIASES = {"name": ("already is a label",)}
DEFAULT_COLOUR = "#5b6770"


def _data(form) -> dict:
    return {"name": form.get("name", ""), "colour": form.get("colour") or DEFAULT_COLOUR}


def _errors(error: ChatError) -> dict:
    return {forms.error_field(error, FIELDS, ALIASES): error.message}


def _list_page(errors: dict | None = None, values: dict | None = None, status: int = 200, **context):
    return page(
        "labels.html",
        status,
        items=labels.all_labels(),
        values=values or {"colour": DEFAULT_COLOUR},
        errors=errors or {},
        section=SECTION,
        **context,
    )


def _label_page(label: Label, errors: dict | None = None, values: dict | None = None, status=200, **context):
    return page(
        "label.html",
        status,
        label=label,
        values=values or labels.describe(label),
        errors=errors or {},
        section=SECTION,
        **context,
    )


@bp.get("/labels", endpoint="labels")
@admin_page
def list_page():
    deleted = request.args.get("deleted")
    return _list_page(notice=f"The label {deleted} was deleted." if deleted else None)


@bp.post("/labels", endpoint="create_label_page")
@admin_page
def create_page():
    try:
        label = labels.create(current_user, _data(request.form))
    except ChatError as error:
        return _list_page(_errors(error), dict(request.form), error.status)
    return _list_page(notice=f"Added the label {label.name}.", status=201)


@bp.get("/labels/<int:label_id>", endpoint="label")
@admin_page
def label_page(label_id: int):
    return _label_page(labels.find(label_id))


@bp.post("/labels/<int:label_id>", endpoint="save_label")
@admin_page
def save(label_id: int):
    label = labels.find(label_id)
    try:
        labels.update(current_user, label.id, _data(request.form))
    except ChatError as error:
        return _label_page(label, _errors(error), dict(request.form), error.status)
    return _label_page(label, notice="Saved.")


@bp.post("/labels/<int:label_id>/delete", endpoint="delete_label_page")
@admin_page
def delete(label_id: int):
    label = labels.find(label_id)
    name = label.name
    labels.remove(current_user, label.id)
    return redirect(url_for("admin.labels", deleted=name))
