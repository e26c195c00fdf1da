"""The agent console's pages: sign-in, sign-out, changing one's password and the single-page console."""

from urllib.parse import urlsplit, urlunsplit

from flask import jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import agents, checked, passwords, rates, routing
from ..errors import ChatError
from ..extensions import db
from ..extensions import login as login_manager
from ..models import Agent
from . import bp

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@bp.after_request
def content_security_policy(response):
    # The console holds every customer's conversations: no inline script either (the rest of the
    # headers are the app's, security_headers.py).
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    return response


@login_manager.user_loader
def load_agent(session_id: str) -> Agent | None:
    """The agent of a session, while that session is still theirs: a password change, a disable or a
    sign-out raises the agent's session version and every older session stops loading."""
    agent_id, _, version = session_id.partition(":")
    if not (agent_id.isascii() and agent_id.isdigit() and version.isascii() and version.isdigit()):
        return None
    if len(agent_id) > 10 or int(agent_id) > checked.MAX_INT:
        return None
    agent = db.session.get(Agent, int(agent_id))
    if agent is None or not agent.is_active or str(agent.session_version) != version:
        return None
    return agent


@login_manager.unauthorized_handler
def unauthorized():
    if request.path.startswith(("/console/api", "/admin/api")) or request.path == "/console/ws":
        return jsonify({"error": {"code": "not_authenticated", "message": "Sign in first."}}), 401
    return redirect(url_for("console.login", next=request.path))


def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never an open redirect to another site, nor a header broken by
    control characters."""
    fallback = url_for("console.index")
    if not target or not target.isascii() or not target.isprintable() or "\\" in target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == "/console" or parts.path.startswith("/console/")):
        return fallback
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _login_page(error: str | None, status: int, next_url: str | None):
    return render_template("console/login.html", error=error, next=next_url), status


def _failed(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
# Failed sign-ins are counted per account and per address; past either limit even the right password
# waits for the window (429), so guessing stays slow however many addresses the guesser has.
@rates.limiter.limit(
    rates.setting("LOGIN_FAILURES_PER_ACCOUNT"),
    key_func=lambda: rates.key("login", (request.form.get("email") or "").strip().lower()),
    methods=["POST"],
    deduct_when=_failed,
)
@rates.limiter.limit(
    rates.setting("LOGIN_FAILURES_PER_ADDRESS"),
    key_func=lambda: rates.key("login-from", request.remote_addr),
    methods=["POST"],
    deduct_when=_failed,
)
def login():
    next_url = request.values.get("next")
    target = _safe_next(next_url)
    if request.method != "POST":
        if current_user.is_authenticated:
            return redirect(target)
        return _login_page(None, 200, next_url)
    agent = agents.authenticate(request.form.get("email") or "", request.form.get("password"))
    if agent is None:
        return _login_page("Wrong email or password.", 401, next_url)
    if not agent.is_active:
        return _login_page("This account is disabled. Ask an admin to enable it.", 403, next_url)
    login_user(agent)
    routing.seen(agent.id)
    if agent.presence in ("offline", "inactive"):
        routing.set_presence(agent, "available")
    return redirect(target)


@bp.post("/logout")
@login_required
def logout():
    agent = current_user._get_current_object()
    routing.set_presence(agent, "offline")
    # Signing out ends the agent's other sessions too: a copied cookie stops working with this one.
    agents.end_sessions(agent)
    logout_user()
    return redirect(url_for("console.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """The agent's own password: the current one is asked again, and every other session ends."""
    if request.method != "POST":
        return render_template("console/password.html", minimum=passwords.MIN_LENGTH, error=None, done=False)
    agent = current_user._get_current_object()
    new = request.form.get("new_password") or ""
    try:
        if new != (request.form.get("confirm_password") or ""):
            raise ChatError(400, "password_mismatch", "The new passwords do not match.")
        agents.change_own_password(agent, request.form.get("current_password"), new)
    except ChatError as error:
        page = render_template("console/password.html", minimum=passwords.MIN_LENGTH, error=error.message, done=False)
        return page, error.status
    # This session carries on under the new session version; the others have ended.
    login_user(agent)
    return render_template("console/password.html", minimum=passwords.MIN_LENGTH, error=None, done=True)


@bp.get("/")
@login_required
def index():
    return render_template("console/index.html")
