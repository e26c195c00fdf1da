"""The admin JSON API: authentication settings and their keys, workstreams, agents. Admins only; console
session + CSRF."""

from functools import wraps

from flask import jsonify, request
from flask_login import current_user, login_required
from sqlalchemy import select

from .. import agents, auth_settings, passwords, workstreams
from ..api import json_body
from ..errors import ChatError, not_found
from ..extensions import db
from ..models import Agent, AuthSetting, Workstream
from . import bp


def admin_only(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if current_user.role != "admin":
            raise ChatError(403, "forbidden", "Only admins can change settings.")
        return view(*args, **kwargs)

    return wrapper


def _setting(setting_id: int) -> AuthSetting:
    setting = db.session.get(AuthSetting, setting_id)
    if setting is None:
        raise not_found("authentication setting")
    return setting


@bp.get("/api/auth-settings")
@admin_only
def list_settings():
    settings = db.session.scalars(select(AuthSetting).order_by(AuthSetting.id))
    return jsonify({"auth_settings": [auth_settings.describe(s) for s in settings]})


@bp.post("/api/auth-settings")
@admin_only
def create_setting():
    data = json_body()
    known = {"name", "client_function", "issuer", "hs256_secret", "clock_skew_seconds", "max_lifetime_seconds"}
    unknown = set(data) - known - {"keys"}
    if unknown:
        raise ChatError(400, "invalid_setting", f"Unknown fields: {', '.join(sorted(unknown))}.")
    setting = auth_settings.create(data.pop("name", None), **data)
    return jsonify({"auth_setting": auth_settings.describe(setting)}), 201


@bp.get("/api/auth-settings/<int:setting_id>")
@admin_only
def get_setting(setting_id: int):
    return jsonify({"auth_setting": auth_settings.describe(_setting(setting_id))})


@bp.post("/api/auth-settings/<int:setting_id>/keys")
@admin_only
def add_key(setting_id: int):
    data = json_body()
    setting = _setting(setting_id)
    auth_settings.add_key(setting, data.get("kid"), data.get("public_key"), data.get("expires_at"))
    return jsonify({"auth_setting": auth_settings.describe(setting)}), 201


@bp.delete("/api/auth-settings/<int:setting_id>/keys/<kid>")
@admin_only
def retire_key(setting_id: int, kid: str):
    setting = _setting(setting_id)
    auth_settings.retire_key(setting, kid)
    return jsonify({"auth_setting": auth_settings.describe(setting)})


@bp.get("/api/workstreams")
@admin_only
def list_workstreams():
    found = db.session.scalars(select(Workstream).order_by(Workstream.created_at))
    return jsonify({"workstreams": [workstreams.describe(w) for w in found]})


@bp.post("/api/workstreams")
@admin_only
def create_workstream():
    workstream = workstreams.create(json_body())
    return jsonify(
        {
            "workstream": workstreams.describe(workstream),
            "embed": workstream.embed_snippet(request.host_url.rstrip("/")),
        }
    ), 201


@bp.patch("/api/workstreams/<workstream_id>")
@admin_only
def update_workstream(workstream_id: str):
    workstream = db.session.get(Workstream, workstream_id)
    if workstream is None:
        raise not_found("workstream")
    return jsonify({"workstream": workstreams.describe(workstreams.update(workstream, json_body()))})


@bp.get("/api/agents")
@admin_only
def list_agents():
    found = db.session.scalars(select(Agent).order_by(Agent.name, Agent.id))
    return jsonify({"agents": [agents.describe(a) for a in found]})


@bp.post("/api/agents")
@admin_only
def create_agent():
    """A new agent; without a `password` one is generated and returned in this answer only."""
    data = json_body()
    details = {k: v for k, v in data.items() if k not in ("email", "name", "role", "password")}
    agent, password = agents.add_agent(
        data.get("email"), data.get("name"), data.get("role", "agent"), data.get("password"), **details
    )
    body = {"agent": agents.describe(agent)}
    if "password" not in data:
        body["password"] = password
    return jsonify(body), 201


@bp.patch("/api/agents/<int:agent_id>")
@admin_only
def update_agent(agent_id: int):
    return jsonify({"agent": agents.describe(agents.update(agents.find(agent_id), json_body()))})


@bp.post("/api/agents/<int:agent_id>/password")
@admin_only
def reset_password(agent_id: int):
    """An admin sets a new password (or has one generated, returned once); the agent's sessions end."""
    data = json_body()
    agent = agents.find(agent_id)
    unknown = set(data) - {"password"}
    if unknown:
        raise ChatError(400, "invalid_agent", f"Unknown fields: {', '.join(sorted(unknown))}.")
    password = data.get("password")
    generated = password is None
    if generated:
        password = passwords.generate()
    agents.set_password(agent, password)
    return jsonify({"agent": agents.describe(agent), **({"password": password} if generated else {})})
