"""The agent console's pages: sign-in, sign-out and the single-page console."""

from flask import jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import func, select

from .. import rates, routing
from ..extensions import db
from ..extensions import login as login_manager
from ..models import Agent
from . import bp

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@bp.after_request
def security_headers(response):
    # The console holds every customer's conversations: no inline script, no framing, no sniffing.
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@login_manager.user_loader
def load_agent(agent_id: str) -> Agent | None:
    return db.session.get(Agent, int(agent_id)) if agent_id.isdigit() else None


@login_manager.unauthorized_handler
def unauthorized():
    if request.path.startswith(("/console/api", "/admin/api")) or request.path == "/console/ws":
        return jsonify({"error": {"code": "not_authenticated", "message": "Sign in first."}}), 401
    return redirect(url_for("console.login", next=request.path))


def _safe_next(target: str | None) -> str:
    # Only paths inside the console: never an open redirect to another site.
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return url_for("console.index")


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
    if request.method != "POST":
        if current_user.is_authenticated:
            return redirect(_safe_next(next_url))
        return render_template("console/login.html", next=next_url)
    email = (request.form.get("email") or "").strip().lower()
    agent = db.session.scalar(select(Agent).where(func.lower(Agent.email) == email)) if email else None
    if agent is None or not agent.check_password(request.form.get("password") or ""):
        return render_template("console/login.html", error="Wrong email or password.", next=next_url), 401
    login_user(agent)
    routing.seen(agent.id)
    if agent.presence in ("offline", "inactive"):
        routing.set_presence(agent, "available")
    return redirect(_safe_next(next_url))


@bp.post("/logout")
@login_required
def logout():
    routing.set_presence(current_user, "offline")
    logout_user()
    return redirect(url_for("console.login"))


@bp.get("/")
@login_required
def index():
    return render_template("console/index.html")
