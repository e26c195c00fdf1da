"""Labels through the console's JSON API and the CLI: admins keep the list, agents put them on, search
filters by them."""

from click.testing import CliRunner

from tests.test_canned import make_admin
from tests.test_console_http import customer_says, sign_in


def test_admins_define_labels_agents_put_them_on_and_search_filters_by_them(app, client, world):
    make_admin(app, world.agents["ada"][0])
    sign_in(client, world, "ada")
    vip = client.post("/console/api/labels", json={"name": " VIP ", "colour": "#B00020"})
    assert vip.status_code == 201 and vip.json["label"] | {"id": 0} == {"id": 0, "name": "VIP", "colour": "#b00020"}
    vip_id = vip.json["label"]["id"]
    billing_id = client.post("/console/api/labels", json={"name": "Billing"}).json["label"]["id"]
    assert [label["name"] for label in client.get("/console/api/labels").json["labels"]] == ["Billing", "VIP"]

    bo = client.application.test_client()
    sign_in(bo, world, "bo")
    refused = bo.post("/console/api/labels", json={"name": "Mine"})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    first = customer_says(client, world, "Charged twice", "l1", sub="alice")["conversation_id"]
    second = customer_says(client, world, "Charged again", "l2", sub="bob")["conversation_id"]
    put = bo.put(f"/console/api/conversations/{first}/labels", json={"label_ids": [vip_id, billing_id]})
    assert put.status_code == 200 and [label["name"] for label in put.json["labels"]] == ["Billing", "VIP"]
    summary = bo.get(f"/console/api/conversations/{first}").json["conversation"]
    assert [label["name"] for label in summary["labels"]] == ["Billing", "VIP"]
    bo.put(f"/console/api/conversations/{second}/labels", json={"label_ids": [billing_id]})

    found = bo.get("/console/api/search", query_string={"q": "charged", "label": vip_id}).json["results"]
    assert [r["conversation"]["id"] for r in found] == [first]
    found = bo.get("/console/api/search", query_string={"label": billing_id}).json["results"]
    assert {r["conversation"]["id"] for r in found} == {first, second}

    assert bo.put(f"/console/api/conversations/{first}/labels", json={"label_ids": []}).json["labels"] == []
    for body, code in [({"label_ids": [99999]}, "unknown_label"), ({"label_ids": "1"}, "invalid_request")]:
        response = bo.put(f"/console/api/conversations/{second}/labels", json=body)
        assert response.status_code == 400 and response.json["error"]["code"] == code
    assert [
        label["name"] for label in bo.get(f"/console/api/conversations/{second}").json["conversation"]["labels"]
    ] == ["Billing"]
    for body, status, code in [
        ({"name": "VIP"}, 409, "duplicate_label"),
        ({"name": ""}, 400, "invalid_request"),
        ({"name": "x", "colour": "red"}, 400, "invalid_request"),
    ]:
        response = client.post("/console/api/labels", json=body)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), body
    assert bo.delete(f"/console/api/labels/{billing_id}").status_code == 403
    assert client.delete(f"/console/api/labels/{billing_id}").status_code == 204
    assert bo.get(f"/console/api/conversations/{second}").json["conversation"]["labels"] == []


def test_labels_from_the_command_line(app):
    runner = CliRunner()
    with app.app_context():
        assert runner.invoke(app.cli, ["labels", "add", "Urgent", "--colour", "#cc0000"]).exit_code == 0
        again = runner.invoke(app.cli, ["labels", "add", "Urgent"])
        assert again.exit_code == 1 and "already" in again.output
        assert "#cc0000\tUrgent" in runner.invoke(app.cli, ["labels", "list"]).output
