"""An agent's own canned responses, beside the profile: the same functions as the console's JSON API."""

from flask import redirect, render_template, request, url_for
from flask_login import current_user, login_required

from .. import canned
from ..admin import forms
from ..errors import ChatError, not_found
from ..models import CannedResponse
from . import bp

FIELDS = ["shortcut", "locale", "body"]
ALIASES = {"shortcut": ("already exists",), "body": ("placeholder", "message", "Messages")}


def _data(form) -> dict:
    return {"shortcut": form.get("shortcut", ""), "locale": form.get("locale") or None, "body": form.get("body", "")}


def _errors(error: ChatError) -> dict:
    return {forms.error_field(error, FIELDS, ALIASES): error.message}


def _list_page(errors: dict | None = None, values: dict | None = None, status: int = 200, notice: str | None = None):
    mine, shared = canned.own(current_user), canned.shared()
    page = render_template(
        "console/canned.html",
        mine=mine,
        shared=shared,
        languages=forms.language_options(*(i.locale for i in mine + shared)),
        values=values or {},
        errors=errors or {},
        notice=notice,
    )
    return page, status


def _own(item_id: int) -> CannedResponse:
    item = canned.find(current_user, item_id)
    if item.agent_id != current_user.id:
        raise not_found("canned response")
    return item


def _item_page(
    item: CannedResponse,
    errors: dict | None = None,
    values: dict | None = None,
    status: int = 200,
    notice: str | None = None,
):
    page = render_template(
        "console/canned_item.html",
        item=item,
        languages=forms.language_options(item.locale),
        values=values or canned.payload(item),
        errors=errors or {},
        notice=notice,
    )
    return page, status


@bp.get("/canned", endpoint="canned")
@login_required
def list_page():
    deleted = request.args.get("deleted")
    return _list_page(notice=f"/{deleted} was deleted." if deleted else None)


@bp.post("/canned", endpoint="create_canned")
@login_required
def create():
    try:
        item = canned.create(current_user, {**_data(request.form), "shared": False})
    except ChatError as error:
        return _list_page(_errors(error), dict(request.form), error.status)
    return _list_page(notice=f"Added /{item.shortcut}: type it after / in the reply box.", status=201)


@bp.route("/canned/<int:item_id>", methods=["GET", "POST"], endpoint="canned_item")
@login_required
def item_page(item_id: int):
    item = _own(item_id)
    if request.method != "POST":
        return _item_page(item)
    try:
        canned.update(current_user, item.id, _data(request.form))
    except ChatError as error:
        return _item_page(item, _errors(error), dict(request.form), error.status)
    return _item_page(item, notice="Saved.")


@bp.post("/canned/<int:item_id>/delete", endpoint="delete_canned")
@login_required
def delete(item_id: int):
    item = _own(item_id)
    shortcut = item.shortcut
    canned.delete(current_user, item.id)
    return redirect(url_for("console.canned", deleted=shortcut))
