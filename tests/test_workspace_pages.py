"""The pages that keep labels and canned responses: the admin pages for the label list and the shared
canned responses, and each agent's "My canned responses" in the console. Refusals come from the same
domain functions as the JSON API, beside their field, with nothing saved; admin changes are audited."""

import json
import re

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, CannedResponse, Label
from tests.test_admin_pages import ROOT, admin  # noqa: F401  (the fixture)
from tests.test_console_http import customer_says, sign_in


def audit_actions(app, kind: str) -> list[tuple[str, str, dict]]:
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.target_kind == kind).order_by(AuditEntry.id)
        ).all()
        return [(e.action, e.actor_label, json.loads(e.changes)) for e in entries]


def field_error(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="error-{field}">([^<]*)</p>', page)
    assert found, f"no error beside {field}"
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page), f"{field} is not marked invalid"
    return found.group(1)


def test_an_admin_keeps_the_labels_on_their_page(admin, app, client, world):  # noqa: F811
    bad = admin.post("/admin/labels", data={"name": "Refund", "colour": "red"})
    assert bad.status_code == 400 and "colour must be #rrggbb" in field_error(bad.data.decode(), "colour")
    empty = admin.post("/admin/labels", data={"name": "  ", "colour": "#b00020"})
    assert empty.status_code == 400 and "name must be 1 to 40" in field_error(empty.data.decode(), "name")
    added = admin.post("/admin/labels", data={"name": "Refund", "colour": "#B00020"})
    assert added.status_code == 201 and "Added the label Refund." in added.data.decode()
    twice = admin.post("/admin/labels", data={"name": "Refund", "colour": "#000000"})
    assert twice.status_code == 409 and "already is a label" in field_error(twice.data.decode(), "name")
    listed = admin.get("/admin/labels").data.decode()
    assert re.search(r'<span class="label-chip label-on-dark" data-colour="#b00020">Refund</span>', listed)
    with app.app_context():
        refund_id = db.session.scalar(select(Label.id).where(Label.name == "Refund"))
        assert db.session.scalar(select(Label.colour).where(Label.id == refund_id)) == "#b00020"

    # Agents put it on a conversation; renaming keeps it there, deleting takes it off.
    agent = app.test_client()
    sign_in(agent, world, "bo")
    conversation_id = customer_says(agent, world, "Money back please", "w1")["conversation_id"]
    agent.put(f"/console/api/conversations/{conversation_id}/labels", json={"label_ids": [refund_id]})
    renamed = admin.post(f"/admin/labels/{refund_id}", data={"name": "Refunds", "colour": "#b00020"})
    assert renamed.status_code == 200 and "Saved." in renamed.data.decode()
    summary = agent.get(f"/console/api/conversations/{conversation_id}").json["conversation"]
    assert [label["name"] for label in summary["labels"]] == ["Refunds"]
    admin.post("/admin/labels", data={"name": "Billing", "colour": "#ffd54f"})
    clash = admin.post(f"/admin/labels/{refund_id}", data={"name": "Billing", "colour": "#b00020"})
    assert clash.status_code == 409 and "already is a label" in field_error(clash.data.decode(), "name")

    deleted = admin.post(f"/admin/labels/{refund_id}/delete")
    assert deleted.status_code == 302 and deleted.location.endswith("/admin/labels?deleted=Refunds")
    assert "The label Refunds was deleted." in admin.get(deleted.location).data.decode()
    assert agent.get(f"/console/api/conversations/{conversation_id}").json["conversation"]["labels"] == []
    assert admin.get(f"/admin/labels/{refund_id}").status_code == 404

    assert audit_actions(app, "label") == [
        ("label.create", ROOT[0], {"colour": [None, "#b00020"], "name": [None, "Refund"]}),
        ("label.update", ROOT[0], {"name": ["Refund", "Refunds"]}),
        ("label.create", ROOT[0], {"colour": [None, "#ffd54f"], "name": [None, "Billing"]}),
        ("label.delete", ROOT[0], {"colour": ["#b00020", None], "name": ["Refunds", None]}),
    ]


def test_an_admin_keeps_the_shared_canned_responses_with_checked_placeholders(admin, app, world):  # noqa: F811
    form = {"shortcut": "/Greet", "locale": "", "workstream_id": "", "body": "Hello {CustomerName}, {AgentName} here."}
    typo = admin.post("/admin/canned", data={**form, "body": "Hello {CustomerNmae}"})
    assert typo.status_code == 400
    assert "Unknown placeholder {CustomerNmae}" in field_error(typo.data.decode(), "body")
    assert "Hello {CustomerNmae}" in typo.data.decode()  # what was typed stays in the box
    bad = admin.post("/admin/canned", data={**form, "shortcut": "two words"})
    assert bad.status_code == 400 and "A shortcut is 1 to 32" in field_error(bad.data.decode(), "shortcut")
    nowhere = admin.post("/admin/canned", data={**form, "workstream_id": "nope"})
    assert nowhere.status_code == 400 and "workstream_id" in field_error(nowhere.data.decode(), "workstream_id")
    empty = admin.post("/admin/canned", data={**form, "body": " "})
    assert empty.status_code == 400 and "empty" in field_error(empty.data.decode(), "body")
    with app.app_context():
        assert db.session.scalars(select(CannedResponse)).all() == []

    assert admin.post("/admin/canned", data=form).status_code == 201
    finnish = {**form, "locale": "fi", "workstream_id": world.workstream_id, "body": "Hei {CustomerName} ({order})!"}
    assert admin.post("/admin/canned", data=finnish).status_code == 201
    twice = admin.post("/admin/canned", data=finnish)
    assert twice.status_code == 409 and "already exists" in field_error(twice.data.decode(), "shortcut")
    listed = admin.get("/admin/canned").data.decode()
    rows = re.findall(r'<td><a href="/admin/canned/(\d+)">/greet</a></td>\s*<td>([^<]+)</td>\s*<td>([^<]+)', listed)
    assert [(language, workstream) for _, language, workstream in rows] == [
        ("Finnish", "Support"),
        ("Any language", "Every workstream"),
    ]
    finnish_id = int(rows[0][0])

    changed = admin.post(f"/admin/canned/{finnish_id}", data={**finnish, "body": "Moi {Customer}"})
    assert changed.status_code == 400 and "Unknown placeholder {Customer}" in field_error(changed.data.decode(), "body")
    changed = admin.post(f"/admin/canned/{finnish_id}", data={**finnish, "workstream_id": "", "body": "Moi!"})
    assert changed.status_code == 200 and "Saved." in changed.data.decode()
    with app.app_context():
        item = db.session.get(CannedResponse, finnish_id)
        assert (item.body, item.workstream_id, item.agent_id) == ("Moi!", None, None)

    # An agent's own are theirs alone: the admin pages neither show nor open them.
    agent = app.test_client()
    sign_in(agent, world, "bo")
    own = agent.post("/console/api/canned", json={"shortcut": "mine", "body": "Bo's own"}).json["canned"]
    assert "/mine" not in admin.get("/admin/canned").data.decode()
    assert admin.get(f"/admin/canned/{own['id']}").status_code == 404
    assert admin.post(f"/admin/canned/{own['id']}/delete").status_code == 404

    deleted = admin.post(f"/admin/canned/{finnish_id}/delete")
    assert deleted.status_code == 302 and "/greet was deleted." in admin.get(deleted.location).data.decode()
    actions = audit_actions(app, "canned_response")
    assert [(action, actor) for action, actor, _ in actions] == [
        ("canned.create", ROOT[0]),
        ("canned.create", ROOT[0]),
        ("canned.update", ROOT[0]),
        ("canned.delete", ROOT[0]),
    ]
    assert actions[2][2] == {
        "body": ["Hei {CustomerName} ({order})!", "Moi!"],
        "workstream_id": [world.workstream_id, None],
    }


def test_an_agent_keeps_their_own_canned_responses_beside_the_profile(app, client, world):
    assert client.get("/console/canned").status_code == 302  # signed out: to the sign-in page
    sign_in(client, world, "ada")
    assert 'href="/console/canned"' in client.get("/console/").data.decode()
    with app.app_context():
        from app import canned

        canned.create(None, {"shortcut": "hours", "body": "We are open 9 to 17."})
    page = client.get("/console/canned").data.decode()
    assert "You have none of your own yet." in page and "We are open 9 to 17." in page

    typo = client.post("/console/canned", data={"shortcut": "bye", "locale": "", "body": "Bye {Agentname}"})
    assert typo.status_code == 400 and "Unknown placeholder {Agentname}" in field_error(typo.data.decode(), "body")
    added = client.post("/console/canned", data={"shortcut": "bye", "locale": "en", "body": "Bye, {CustomerName}!"})
    assert added.status_code == 201 and "Added /bye" in added.data.decode()
    twice = client.post("/console/canned", data={"shortcut": "bye", "locale": "en", "body": "Again"})
    assert twice.status_code == 409 and "already exists" in field_error(twice.data.decode(), "shortcut")
    listed = client.get("/console/api/canned").json["canned"]
    mine = next(c for c in listed if c["shortcut"] == "bye")
    assert (mine["shared"], mine["locale"], mine["body"]) == (False, "en", "Bye, {CustomerName}!")

    edited = client.post(f"/console/canned/{mine['id']}", data={"shortcut": "bye", "locale": "", "body": "Take care!"})
    assert edited.status_code == 200 and "Saved." in edited.data.decode()
    assert client.get("/console/api/canned").json["canned"][0]["body"] == "Take care!"

    # Nobody else's, and not the shared ones: those are the admins'.
    other = app.test_client()
    sign_in(other, world, "bo")
    assert other.get(f"/console/canned/{mine['id']}").status_code == 404
    assert other.post(f"/console/canned/{mine['id']}/delete").status_code == 404
    shared_id = next(c["id"] for c in listed if c["shared"])
    assert client.get(f"/console/canned/{shared_id}").status_code == 403
    assert client.post("/console/canned", data={"shortcut": "x", "body": "y", "shared": "1"}).status_code == 201
    assert not any(c["shared"] and c["shortcut"] == "x" for c in client.get("/console/api/canned").json["canned"])

    deleted = client.post(f"/console/canned/{mine['id']}/delete")
    assert deleted.status_code == 302 and "/bye was deleted." in client.get(deleted.location).data.decode()
    # An agent's own are not admin changes: the audit log has only the shared one.
    assert [action for action, _, _ in audit_actions(app, "canned_response")] == ["canned.create"]


def test_the_api_takes_a_workstream_for_a_canned_response_and_renames_labels(app, client, world):
    from tests.test_canned import make_admin

    make_admin(app, world.agents["ada"][0])
    sign_in(client, world, "ada")
    made = client.post(
        "/console/api/canned",
        json={"shortcut": "ws", "body": "Only here", "shared": True, "workstream_id": world.workstream_id},
    )
    assert made.status_code == 201 and made.json["canned"]["workstream_id"] == world.workstream_id
    for body in ({"workstream_id": "nope"}, {"workstream_id": 5}):
        refused = client.patch(f"/console/api/canned/{made.json['canned']['id']}", json=body)
        assert refused.status_code == 400 and refused.json["error"]["code"] == "unknown_workstream", body
    typo = client.post("/console/api/canned", json={"shortcut": "t", "body": "{Name}"})
    assert typo.status_code == 400 and typo.json["error"]["code"] == "unknown_placeholder"

    label = client.post("/console/api/labels", json={"name": "Vip"}).json["label"]
    renamed = client.patch(f"/console/api/labels/{label['id']}", json={"name": "VIP"})
    assert renamed.status_code == 200 and renamed.json["label"] == {**label, "name": "VIP"}
    assert client.patch(f"/console/api/labels/{label['id']}", json={"colour": "blue"}).status_code == 400
    assert client.patch("/console/api/labels/99999", json={"name": "x"}).status_code == 404
    sign_in(bo := app.test_client(), world, "bo")
    assert bo.patch(f"/console/api/labels/{label['id']}", json={"name": "Mine"}).status_code == 403


def test_deleting_an_agent_takes_their_own_canned_responses_with_them(admin, app):  # noqa: F811
    from app import canned
    from app.agents import add_agent

    with app.app_context():
        cy, _password = add_agent("cy@example.com", "Cy", "agent", None)
        canned.create(cy, {"shortcut": "mine", "body": "Cy's own", "shared": False})
        canned.create(None, {"shortcut": "ours", "body": "Everyone's"})
        cy_id = cy.id
    assert admin.post(f"/admin/agents/{cy_id}/delete").status_code == 302
    with app.app_context():
        assert [c.shortcut for c in db.session.scalars(select(CannedResponse))] == ["ours"]
