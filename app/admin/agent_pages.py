"""The agent pages: the team with presence and load, adding an agent (a generated password shown once,
or one set here), editing, resetting a password, disabling, enabling and deleting."""

from flask import redirect, request, url_for
from sqlalchemy import select

from .. import agents, capacity, clock, passwords
from ..errors import ChatError
from ..extensions import db
from ..models import ROLES, Agent
from . import bp, forms
from .pages import admin_page, page

SECTION = "admin.agents"
FIELDS = ["email", "name", "role", "capacity", "max_items", "password"]
ALIASES = {"password": ("characters", "Password", "password"), "role": ("last admin",), "email": ("email",)}


def _rows() -> list[dict]:
    found = list(db.session.scalars(select(Agent).order_by(Agent.disabled_at.is_not(None), Agent.name, Agent.id)))
    loads = capacity.loads(clock.now(), [a.id for a in found])
    return [{"agent": a, "load": capacity.capacity_view(a, loads.get(a.id, capacity.Load()))} for a in found]


def _list_page(errors: dict | None = None, values: dict | None = None, status: int = 200, **context):
    return page(
        "agents.html",
        status,
        rows=_rows(),
        roles=ROLES,
        minimum=passwords.MIN_LENGTH,
        values=values or {"role": "agent", "capacity": 100},
        errors=errors or {},
        section=SECTION,
        **context,
    )


@bp.get("/agents", endpoint="agents")
@admin_page
def list_page():
    deleted = request.args.get("deleted")
    return _list_page(notice=f"{deleted} was deleted." if deleted else None)


@bp.post("/agents", endpoint="create_agent_page")
@admin_page
def create_page():
    form = request.form
    chosen = form.get("password") or None
    try:
        agent, password = agents.add_agent(
            form.get("email", ""),
            form.get("name", ""),
            form.get("role", "agent"),
            chosen,
            capacity=forms.integer(form.get("capacity")),
            max_items=forms.integer(form.get("max_items")),
        )
    except ChatError as error:
        values = {k: v for k, v in form.items() if k != "password"}
        return _list_page({forms.error_field(error, FIELDS, ALIASES): error.message}, values, error.status)
    shown = None if chosen else password
    return _agent_page(agent, notice=f"{agent.name} can now sign in at the console.", password=shown, status=201)


def _agent_page(agent: Agent, errors: dict | None = None, values: dict | None = None, status: int = 200, **context):
    return page(
        "agent.html",
        status,
        agent=agent,
        roles=ROLES,
        minimum=passwords.MIN_LENGTH,
        values=values or agents.describe(agent),
        errors=errors or {},
        section=SECTION,
        **context,
    )


@bp.get("/agents/<int:agent_id>", endpoint="agent")
@admin_page
def agent_page(agent_id: int):
    return _agent_page(agents.find(agent_id))


def _change(agent_id: int, data: dict, notice: str):
    agent = agents.find(agent_id)
    try:
        agents.update(agent, data)
    except ChatError as error:
        agent = agents.find(agent_id)
        return _agent_page(agent, {forms.error_field(error, FIELDS, ALIASES): error.message}, status=error.status)
    return _agent_page(agent, notice=notice)


@bp.post("/agents/<int:agent_id>", endpoint="save_agent")
@admin_page
def save_agent(agent_id: int):
    form = request.form
    data = {
        "name": form.get("name", ""),
        "email": form.get("email", ""),
        "role": form.get("role"),
        "capacity": forms.integer(form.get("capacity")),
        "max_items": forms.integer(form.get("max_items")),
    }
    agent = agents.find(agent_id)
    try:
        agents.update(agent, data)
    except ChatError as error:
        field = forms.error_field(error, FIELDS, ALIASES)
        return _agent_page(agents.find(agent_id), {field: error.message}, dict(form), error.status)
    return _agent_page(agent, notice="Saved.")


@bp.post("/agents/<int:agent_id>/disable", endpoint="disable_agent_page")
@admin_page
def disable(agent_id: int):
    return _change(
        agent_id,
        {"disabled": True},
        "Disabled: signed out everywhere, their active conversations are back in the queue.",
    )


@bp.post("/agents/<int:agent_id>/enable", endpoint="enable_agent_page")
@admin_page
def enable(agent_id: int):
    return _change(agent_id, {"disabled": False}, "Enabled: they can sign in again.")


@bp.post("/agents/<int:agent_id>/password", endpoint="reset_agent_password")
@admin_page
def reset_password(agent_id: int):
    agent = agents.find(agent_id)
    chosen = request.form.get("new_password") or None
    password = chosen or passwords.generate()
    try:
        agents.set_password(agent, password)
    except ChatError as error:
        return _agent_page(agent, {"new_password": error.message}, status=error.status)
    notice = "Password changed: their sessions have ended."
    return _agent_page(agent, notice=notice, password=None if chosen else password)


@bp.post("/agents/<int:agent_id>/delete", endpoint="delete_agent_page")
@admin_page
def delete(agent_id: int):
    agent = agents.find(agent_id)
    name = agent.name
    try:
        agents.delete(agent)
    except ChatError as error:
        return _agent_page(agents.find(agent_id), {"_form": error.message}, status=error.status)
    return redirect(url_for("admin.agents", deleted=name))
