"""The privacy page: find a customer (by authentication setting and sub, or by email), download
everything stored about them, erase them after a confirmation that says what will happen. The same
domain functions as the JSON API and the CLI, with the same audit entries."""

from flask import Response, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import privacy
from ..api import int_arg
from ..errors import ChatError
from ..extensions import db
from ..models import AuthSetting, Customer
from . import bp, forms
from .pages import admin_page, page

SECTION = "admin.privacy"


def _settings() -> dict[int, str]:
    return {s.id: f"{s.name} (#{s.id})" for s in db.session.scalars(select(AuthSetting).order_by(AuthSetting.id))}


def _row(customer: Customer, settings: dict[int, str]) -> dict:
    return {
        "customer": privacy.describe(customer),
        "label": customer.label(),
        "signed_in_with": settings.get(customer.auth_setting_id, "Anonymous visitor (live chat)"),
        "holdings": privacy.holdings(customer),
    }


def _search(args) -> tuple[list[Customer] | None, dict]:
    """The customers the query asks for (None before any search), and a refusal beside its field."""
    email, sub = forms.text(args.get("email")), forms.text(args.get("sub"))
    if email is None and sub is None:
        return None, {}
    # The domain's refusals name API fields; the page says what to do in its own words.
    if email is not None:
        try:
            return privacy.find(email=email), {}
        except ChatError:
            return None, {"email": "Enter a whole email address, such as ada@example.com."}
    try:
        return privacy.find(forms.integer(args.get("auth_setting_id")), sub), {}
    except ChatError:
        return None, {"auth_setting_id": "Choose the authentication setting the customer signs in with."}


@bp.get("/privacy", endpoint="privacy")
@admin_page
def privacy_page():
    settings = _settings()
    found, errors = _search(request.args)
    notice = None
    if request.args.get("erased"):
        conversations = int_arg("conversations", 0)
        messages = int_arg("messages", 0)
        notice = (
            f"The customer was erased: {conversations} conversation(s) and {messages} message(s) deleted, "
            "and their open chat widgets closed."
        )
    return page(
        "privacy.html",
        400 if errors else 200,
        settings=[("", "Choose one")] + [(str(k), v) for k, v in settings.items()],
        values=request.args,
        errors=errors,
        results=None if found is None else [_row(c, settings) for c in found],
        notice=notice,
        section=SECTION,
    )


@bp.get("/privacy/customers/<int:customer_id>/export", endpoint="export_customer_page")
@admin_page
def export_page(customer_id: int):
    archive = privacy.export(privacy.get(customer_id), current_user)
    return Response(
        archive,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="customer-{customer_id}.zip"'},
    )


def _erase_page(customer: Customer, errors: dict | None = None, status: int = 200):
    return page(
        "privacy_erase.html",
        status,
        row=_row(customer, _settings()),
        errors=errors or {},
        section=SECTION,
    )


@bp.get("/privacy/customers/<int:customer_id>/erase", endpoint="erase_customer_page")
@admin_page
def erase_confirmation(customer_id: int):
    return _erase_page(privacy.get(customer_id))


@bp.post("/privacy/customers/<int:customer_id>/erase", endpoint="erase_customer_now")
@admin_page
def erase(customer_id: int):
    customer = privacy.get(customer_id)
    if not request.form.get("confirm"):
        return _erase_page(customer, {"confirm": "Tick the box to confirm: an erasure cannot be undone."}, 400)
    counts = privacy.erase(customer, current_user)
    return redirect(url_for("admin.privacy", erased=1, **counts))
