"""Canned responses through the console's JSON API and the CLI: who keeps which, what is refused."""

from click.testing import CliRunner
from sqlalchemy import update

from app.extensions import db
from app.models import Agent
from tests.test_console_http import sign_in


def make_admin(app, email: str) -> None:
    with app.app_context():
        db.session.execute(update(Agent).where(Agent.email == email).values(role="admin"))
        db.session.commit()


def test_agents_keep_their_own_and_see_the_shared_ones(app, client, world):
    make_admin(app, world.agents["ada"][0])
    sign_in(client, world, "ada")
    shared = client.post(
        "/console/api/canned", json={"shortcut": "/Hello", "body": "Hi {CustomerName}!", "shared": True}
    )
    assert shared.status_code == 201
    assert shared.json["canned"] | {"id": 0} == {
        "id": 0,
        "shortcut": "hello",
        "locale": None,
        "body": "Hi {CustomerName}!",
        "workstream_id": None,
        "shared": True,
        "agent_id": None,
    }
    finnish = client.post(
        "/console/api/canned",
        json={"shortcut": "hello", "body": "Hei {CustomerName}!", "locale": "fi-FI", "shared": True},
    ).json["canned"]
    assert finnish["locale"] == "fi"
    client.post("/console/logout")

    bo = client.application.test_client()
    sign_in(bo, world, "bo")
    own = bo.post("/console/api/canned", json={"shortcut": "bye", "body": "Bye from {AgentName}"})
    assert own.status_code == 201 and own.json["canned"]["agent_id"] is not None
    listed = bo.get("/console/api/canned").json["canned"]
    assert [(c["shortcut"], c["locale"], c["shared"]) for c in listed] == [
        ("bye", None, False),
        ("hello", "fi", True),
        ("hello", None, True),
    ]
    # An agent cannot make or change shared ones, nor see or touch another agent's.
    refused = bo.post("/console/api/canned", json={"shortcut": "x", "body": "y", "shared": True})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    assert bo.patch(f"/console/api/canned/{finnish['id']}", json={"body": "no"}).status_code == 403
    assert bo.delete(f"/console/api/canned/{finnish['id']}").status_code == 403
    ada = client.application.test_client()
    sign_in(ada, world, "ada")
    assert [c["shortcut"] for c in ada.get("/console/api/canned").json["canned"]] == ["hello", "hello"]
    assert ada.delete(f"/console/api/canned/{own.json['canned']['id']}").status_code == 404

    changed = bo.patch(f"/console/api/canned/{own.json['canned']['id']}", json={"body": "See you, {CustomerName}"})
    assert changed.status_code == 200 and changed.json["canned"]["body"] == "See you, {CustomerName}"
    assert bo.delete(f"/console/api/canned/{own.json['canned']['id']}").status_code == 204
    assert [c["shortcut"] for c in bo.get("/console/api/canned").json["canned"]] == ["hello", "hello"]


def test_bad_canned_responses_are_refused_with_json_errors(client, world):
    sign_in(client, world)
    client.post("/console/api/canned", json={"shortcut": "ok", "body": "fine"})
    for body, status, code in [
        ({"shortcut": "ok", "body": "again"}, 409, "duplicate_shortcut"),
        ({"shortcut": "has space", "body": "x"}, 400, "invalid_shortcut"),
        ({"shortcut": "", "body": "x"}, 400, "invalid_shortcut"),
        ({"shortcut": 5, "body": "x"}, 400, "invalid_request"),
        ({"shortcut": "a" * 33, "body": "x"}, 400, "invalid_shortcut"),
        ({"shortcut": "new", "body": " "}, 400, "empty_message"),
        ({"shortcut": "new", "body": "x", "locale": "not a tag!"}, 400, "invalid_request"),
        ({"shortcut": "new", "body": "x", "shared": "yes"}, 400, "invalid_request"),
        ([1], 400, "invalid_json"),
    ]:
        response = client.post("/console/api/canned", json=body)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), body
    assert client.patch("/console/api/canned/99999", json={"body": "x"}).status_code == 404
    assert [c["shortcut"] for c in client.get("/console/api/canned").json["canned"]] == ["ok"]


def test_admins_keep_the_shared_ones_from_the_command_line(app, world):
    runner = CliRunner()
    with app.app_context():
        cli = app.cli
        added = runner.invoke(cli, ["canned", "add", "thanks", "Thank you, {CustomerName}!", "--locale", "en"])
        assert added.exit_code == 0, added.output
        again = runner.invoke(cli, ["canned", "add", "thanks", "Again", "--locale", "en"])
        assert again.exit_code == 1 and "already exists" in again.output
        bad = runner.invoke(cli, ["canned", "add", "no way", "x"])
        assert bad.exit_code == 1 and "shortcut" in bad.output
        listed = runner.invoke(cli, ["canned", "list"])
        assert "/thanks\ten\t*\tThank you, {CustomerName}!" in listed.output
        item_id = listed.output.split("\t")[0]
        assert runner.invoke(cli, ["canned", "delete", item_id]).exit_code == 0
        assert runner.invoke(cli, ["canned", "delete", item_id]).exit_code == 1
        assert runner.invoke(cli, ["canned", "list"]).output == ""
