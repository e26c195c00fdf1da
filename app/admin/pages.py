"""The admin pages' common ground: who may see them, their security policy, the overview and the audit
log. Each page calls the same domain functions as the JSON API and the CLI."""

from functools import wraps

from flask import render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from .. import audit
from ..api import int_arg
from ..console.routes import CONTENT_SECURITY_POLICY
from ..extensions import db
from ..models import Agent, AuthSetting, Workstream
from . import bp


@bp.after_request
def content_security_policy(response):
    # The same policy as the console's: no inline script or style, forms post only here.
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def admin_page(view):
    """Signed-in admins only: others get a 403 page (the JSON API answers 403 in JSON)."""

    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.role != "admin":
            return render_template("admin/forbidden.html"), 403
        return view(*args, **kwargs)

    return wrapper


def page(template: str, status: int = 200, **context):
    return render_template(f"admin/{template}", **context), status


@bp.get("/")
@admin_page
def overview():
    def count(model) -> int:
        return db.session.scalar(select(func.count()).select_from(model))

    counts = {"workstreams": count(Workstream), "auth_settings": count(AuthSetting), "agents": count(Agent)}
    recent, _more = audit.page(limit=5)
    return page("overview.html", counts=counts, recent=[audit.describe(e) for e in recent], section=None)


@bp.get("/audit", endpoint="audit")
@admin_page
def audit_log():
    before = int_arg("before", low=1)
    entries, more = audit.page(before)
    described = [audit.describe(e) for e in entries]
    older = described[-1]["id"] if more and described else None
    return page("audit.html", entries=described, older=older, first=before is None, section="admin.audit")
