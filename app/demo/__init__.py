"""The demo site: a page standing in for a customer's website, which signs its own customers' tokens."""

import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import jwt
from flask import Blueprint, abort, jsonify, render_template, request
from sqlalchemy import select

from ..agents import add_agent
from ..extensions import db
from ..models import Agent, AuthSetting, Workstream

bp = Blueprint("demo", __name__, url_prefix="/demo")

SETTING_NAME = "Demo site"
WORKSTREAM_NAME = "Demo support"
CUSTOMERS = {"alice": "Alice Andersson", "bob": "Bob Berg", "carol": "Carol Castro"}
TOKEN_SECONDS = 3600


def demo_workstream() -> Workstream | None:
    return db.session.scalar(
        select(Workstream)
        .join(AuthSetting)
        .where(AuthSetting.name == SETTING_NAME, Workstream.name == WORKSTREAM_NAME)
        .order_by(Workstream.created_at)
    )


def sign(setting: AuthSetting, sub: str, name: str | None = None, lifetime: int = TOKEN_SECONDS) -> str:
    """What the site's own backend does for a signed-in customer."""
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": now + lifetime}
    if name:
        claims["name"] = name
    if setting.issuer:
        claims["iss"] = setting.issuer
    return jwt.encode(claims, setting.hs256_secret, algorithm="HS256")


@bp.get("/")
def page():
    workstream = demo_workstream()
    if workstream is None:
        abort(404, "There is no demo data: run `persistent-chat demo`.")
    who = request.args.get("customer", "alice")
    if who not in CUSTOMERS:
        who = "alice"
    return render_template("demo.html", workstream=workstream, customers=CUSTOMERS, who=who)


@bp.get("/token")
def token():
    workstream = demo_workstream()
    who = request.args.get("customer", "")
    if workstream is None or who not in CUSTOMERS:
        abort(404, "No such demo customer.")
    return jsonify({"token": sign(workstream.auth_setting, who, CUSTOMERS[who])})


ADMIN_EMAIL = "admin@example.com"


def ensure(server_url: str, echo: Callable[[str], None]) -> None:
    """Create the demo data when missing (idempotent), allow the server's own origin, print the way in."""
    workstream = demo_workstream()
    if workstream is None:
        setting = AuthSetting(name=SETTING_NAME, hs256_secret=secrets.token_urlsafe(32))
        workstream = Workstream(name=WORKSTREAM_NAME, mode="persistent", auth_setting=setting, allowed_origins="")
        db.session.add(workstream)
    parts = urlsplit(server_url)
    port = f":{parts.port}" if parts.port else ""
    origins = workstream.origins()
    for host in {parts.hostname, "127.0.0.1", "localhost"}:
        origin = f"{parts.scheme}://{host}{port}"
        if origin not in origins:
            origins.append(origin)
    workstream.allowed_origins = " ".join(origins)
    db.session.commit()
    if db.session.scalar(select(Agent).where(Agent.email == ADMIN_EMAIL)) is None:
        _agent, password = add_agent(ADMIN_EMAIL, "Demo Admin", "admin", None)
        echo(f"Created the admin agent {ADMIN_EMAIL} with password: {password}")
        echo("(shown this once; create more agents with `persistent-chat create-agent`)")
    echo(f"Console:   {server_url}/console/")
    echo(f"Demo site: {server_url}/demo/")
    echo(f"Embed:     {workstream.embed_snippet(server_url)}")
