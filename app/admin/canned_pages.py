"""The shared canned responses: every agent's console offers them after `/`. Adding, changing and
deleting them here calls the same functions as the console's JSON API and the CLI."""

from flask import redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import canned
from ..errors import ChatError, not_found
from ..extensions import db
from ..models import CannedResponse, Workstream
from . import bp, forms
from .pages import admin_page, page

SECTION = "admin.canned"
FIELDS = ["shortcut", "locale", "workstream_id", "body"]
ALIASES = {"shortcut": ("already exists",), "body": ("placeholder", "message", "Messages")}


def _workstreams() -> list[tuple[str, str]]:
    return [(w.id, w.name) for w in db.session.scalars(select(Workstream).order_by(Workstream.name))]


def _data(form) -> dict:
    return {
        "shortcut": form.get("shortcut", ""),
        "locale": form.get("locale") or None,
        "workstream_id": form.get("workstream_id") or None,
        "body": form.get("body", ""),
        "shared": True,
    }


def _errors(error: ChatError) -> dict:
    return {forms.error_field(error, FIELDS, ALIASES): error.message}


def _list_page(errors: dict | None = None, values: dict | None = None, status: int = 200, **context):
    items = canned.shared()
    workstreams = _workstreams()
    return page(
        "canned.html",
        status,
        items=items,
        workstream_names=dict(workstreams),
        workstreams=workstreams,
        languages=forms.language_options(*(i.locale for i in items)),
        values=values or {},
        errors=errors or {},
        section=SECTION,
        **context,
    )


def _shared(item_id: int) -> CannedResponse:
    item = canned.find(current_user, item_id)
    if item.agent_id is not None:
        raise not_found("canned response")
    return item


def _item_page(item: CannedResponse, errors: dict | None = None, values: dict | None = None, status=200, **context):
    return page(
        "canned_item.html",
        status,
        item=item,
        workstreams=_workstreams(),
        languages=forms.language_options(item.locale),
        values=values or canned.payload(item),
        errors=errors or {},
        section=SECTION,
        **context,
    )


@bp.get("/canned", endpoint="canned")
@admin_page
def list_page():
    deleted = request.args.get("deleted")
    return _list_page(notice=f"/{deleted} was deleted." if deleted else None)


@bp.post("/canned", endpoint="create_canned_page")
@admin_page
def create_page():
    try:
        item = canned.create(current_user, _data(request.form))
    except ChatError as error:
        return _list_page(_errors(error), dict(request.form), error.status)
    return _list_page(notice=f"Added /{item.shortcut}: every agent can insert it now.", status=201)


@bp.get("/canned/<int:item_id>", endpoint="canned_item")
@admin_page
def item_page(item_id: int):
    return _item_page(_shared(item_id))


@bp.post("/canned/<int:item_id>", endpoint="save_canned")
@admin_page
def save(item_id: int):
    item = _shared(item_id)
    data = _data(request.form)
    del data["shared"]
    try:
        canned.update(current_user, item.id, data)
    except ChatError as error:
        return _item_page(_shared(item_id), _errors(error), dict(request.form), error.status)
    return _item_page(item, notice="Saved.")


@bp.post("/canned/<int:item_id>/delete", endpoint="delete_canned_page")
@admin_page
def delete(item_id: int):
    item = _shared(item_id)
    shortcut = item.shortcut
    canned.delete(current_user, item.id)
    return redirect(url_for("admin.canned", deleted=shortcut))
