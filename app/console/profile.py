"""An agent's own profile: the name customers and colleagues see, and a way to the password page."""

from flask import render_template, request
from flask_login import current_user, login_required

from .. import agents
from ..errors import ChatError
from . import bp


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    agent = current_user._get_current_object()
    if request.method != "POST":
        return render_template("console/profile.html", name=agent.name, error=None, done=False)
    name = request.form.get("name") or ""
    try:
        agents.update(agent, {"name": name})
    except ChatError as error:
        return render_template("console/profile.html", name=name, error=error.message, done=False), error.status
    return render_template("console/profile.html", name=agent.name, error=None, done=True)
