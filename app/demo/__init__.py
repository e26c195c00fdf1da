"""The demo site: a page standing in for a customer's website, which signs its own customers' tokens."""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Blueprint, abort, current_app, jsonify, make_response, render_template, request
from sqlalchemy import select

from ..agents import add_agent
from ..extensions import db
from ..models import Agent, AuthKey, AuthSetting, Workstream

bp = Blueprint("demo", __name__, url_prefix="/demo")

SETTING_NAME = "Demo site"
WORKSTREAM_NAME = "Demo support"
# sub -> (name, context variables the site passes to agents)
CUSTOMERS = {
    "alice": ("Alice Andersson", {"plan": "Gold", "open_orders": 2, "newsletter": True}),
    "bob": ("Bob Berg", {"plan": "Basic", "open_orders": 0, "newsletter": False}),
    "carol": ("Carol Castro", {"plan": "Gold", "open_orders": 5, "newsletter": True}),
}
KEY_ID = "demo-1"
DEMO_COOKIE = "demo_customer"
TOKEN_SECONDS = 3600


def demo_workstream() -> Workstream | None:
    return db.session.scalar(
        select(Workstream)
        .join(AuthSetting)
        .where(AuthSetting.name == SETTING_NAME, Workstream.name == WORKSTREAM_NAME)
        .order_by(Workstream.created_at)
    )


def signing_key_path() -> Path:
    return Path(current_app.instance_path) / "demo_signing_key.pem"


def _generate_key_pair() -> str:
    """A fresh RSA key pair for the demo site: the private half stays in instance/, the public half is
    registered with the chat server, as a real site would do."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = signing_key_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def sign(sub: str) -> str:
    """What the demo site's own backend does for its signed-in customer."""
    now = int(time.time())
    name, context = CUSTOMERS[sub]
    claims = {
        "sub": sub,
        "name": name,
        "email": f"{sub}@example.com",
        "iat": now,
        "exp": now + TOKEN_SECONDS,
        "lwicontexts": json.dumps(context),
    }
    return jwt.encode(claims, signing_key_path().read_bytes(), algorithm="RS256", headers={"kid": KEY_ID})


@bp.get("/")
def page():
    workstream = demo_workstream()
    if workstream is None:
        abort(404, "There is no demo data: run `persistent-chat demo`.")
    # Remembered like a real site's sign-in, so an email's link back (to /demo/) finds the same customer.
    who = request.args.get("customer") or request.cookies.get(DEMO_COOKIE) or "alice"
    if who not in CUSTOMERS:
        who = "alice"
    names = {sub: name for sub, (name, _context) in CUSTOMERS.items()}
    response = make_response(render_template("demo.html", workstream=workstream, customers=names, who=who))
    response.set_cookie(DEMO_COOKIE, who, httponly=True, samesite="Lax")
    return response


@bp.get("/token")
def token():
    workstream = demo_workstream()
    who = request.args.get("customer", "")
    if workstream is None or who not in CUSTOMERS:
        abort(404, "No such demo customer.")
    return jsonify({"token": sign(who)})


ADMIN_EMAIL = "admin@example.com"


def ensure(server_url: str, echo: Callable[[str], None]) -> None:
    """Create the demo data when missing (idempotent), allow the server's own origin, print the way in."""
    workstream = demo_workstream()
    if workstream is None:
        workstream = Workstream(
            name=WORKSTREAM_NAME,
            mode="persistent",
            auth_setting=AuthSetting(name=SETTING_NAME, client_function="getChatToken"),
            allowed_origins="",
            # A minute, so the demo shows an unread reply's email (in the log with `make run`) soon.
            notify_email_after_minutes=1,
        )
        db.session.add(workstream)
    setting = workstream.auth_setting
    # A key pair per instance, made at the first `make run`; remade if the private half went missing.
    if not signing_key_path().exists() or not any(k.kid == KEY_ID and k.retired_at is None for k in setting.keys):
        for key in [k for k in setting.keys if k.kid == KEY_ID]:
            setting.keys.remove(key)
            db.session.delete(key)
        db.session.flush()
        setting.keys.append(AuthKey(kid=KEY_ID, algorithm="RS256", public_key_pem=_generate_key_pair()))
    parts = urlsplit(server_url)
    port = f":{parts.port}" if parts.port else ""
    origins = workstream.origins()
    for host in {parts.hostname, "127.0.0.1", "localhost"}:
        origin = f"{parts.scheme}://{host}{port}"
        if origin not in origins:
            origins.append(origin)
    workstream.allowed_origins = " ".join(origins)
    workstream.notify_return_url = workstream.notify_return_url or f"{server_url}/demo/"
    db.session.commit()
    if db.session.scalar(select(Agent).where(Agent.email == ADMIN_EMAIL)) is None:
        _agent, password = add_agent(ADMIN_EMAIL, "Demo Admin", "admin", None)
        echo(f"Created the admin agent {ADMIN_EMAIL} with password: {password}")
        echo("(shown this once; create more agents with `persistent-chat create-agent`)")
    echo(f"Console:   {server_url}/console/")
    echo(f"Demo site: {server_url}/demo/")
    echo(f"Embed:     {workstream.embed_snippet(server_url)}")
