"""The supervisor role through the console's JSON API: the team's conversations, reassigning."""

from sqlalchemy import update

from app import timers
from app.extensions import db
from app.models import Agent
from tests.test_console_http import customer_says, sign_in


def set_role(app, email: str, role: str) -> None:
    with app.app_context():
        db.session.execute(update(Agent).where(Agent.email == email).values(role=role))
        db.session.commit()


def test_a_supervisor_sees_every_current_conversation_and_reassigns_one(app, client, world):
    set_role(app, world.agents["bo"][0], "supervisor")
    ada = client
    sign_in(ada, world, "ada")
    first = customer_says(ada, world, "Help with billing", "t1", sub="alice")["conversation_id"]
    second = customer_says(ada, world, "Help with login", "t2", sub="bob")["conversation_id"]
    assert ada.get("/console/api/team/conversations").status_code == 403
    refused = ada.post(f"/console/api/conversations/{first}/reassign", json={"agent_id": None})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"

    bo = client.application.test_client()
    sign_in(bo, world, "bo")
    team = bo.get("/console/api/team/conversations").json["conversations"]
    assert [(c["id"], c["agent"]["name"]) for c in team] == [(first, "Ada"), (second, "Ada")]
    bo_id = bo.get("/console/api/me").json["agent"]["id"]

    moved = bo.post(f"/console/api/conversations/{first}/reassign", json={"agent_id": bo_id})
    assert moved.status_code == 200
    assert moved.json["conversation"]["agent"]["name"] == "Bo" and moved.json["conversation"]["offer_expires_at"]
    queued = bo.post(f"/console/api/conversations/{second}/reassign", json={"agent_id": None})
    assert queued.status_code == 200 and queued.json["conversation"]["status"] in ("open", "active")
    with app.app_context():
        timers.tick()
    # Sent away from Ada, it is not pushed back to her, however often routing runs.
    team = {c["id"]: c for c in bo.get("/console/api/team/conversations").json["conversations"]}
    assert (team[second]["agent"] or {}).get("name") != "Ada"
    for body, status, code in [
        ({"agent_id": bo_id}, 409, "wrong_state"),
        ({"agent_id": "x"}, 400, "invalid_request"),
        ({"agent_id": 99999}, 404, "not_found"),
        ({}, 400, "invalid_request"),
    ]:
        response = bo.post(f"/console/api/conversations/{first}/reassign", json=body)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), body
    ada_id = ada.get("/console/api/me").json["agent"]["id"]
    assert ada.post("/console/api/presence", json={"presence": "offline"}).status_code == 200
    unavailable = bo.post(f"/console/api/conversations/{first}/reassign", json={"agent_id": ada_id})
    assert unavailable.status_code == 409 and unavailable.json["error"]["code"] == "agent_unavailable"
