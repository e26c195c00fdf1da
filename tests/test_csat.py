"""CSAT through the widget's and the console's JSON APIs: asked once an agent ends, given once."""

from sqlalchemy import update

from app.extensions import db
from app.models import Workstream
from tests.support import HOST_ORIGIN
from tests.test_console_http import customer_says, sign_in


def widget(client, world, method, path, sub="alice", **kwargs):
    return client.open(
        f"/api/widget/workstreams/{world.workstream_id}{path}",
        method=method,
        headers={"Authorization": f"Bearer {world.token(sub)}", "Origin": HOST_ORIGIN},
        **kwargs,
    )


def conversation_of(client, world, conversation_id, sub="alice"):
    found = widget(client, world, "GET", "/conversations", sub).json["conversations"]
    return next(c for c in found if c["id"] == conversation_id)


def test_the_customer_rates_a_conversation_the_agent_ended_once_and_the_agent_sees_it(client, world):
    sign_in(client, world)
    conversation_id = customer_says(client, world, "Thanks for the help", "r1")["conversation_id"]
    assert conversation_of(client, world, conversation_id)["rating_wanted"] is False
    early = widget(client, world, "POST", f"/conversations/{conversation_id}/rating", json={"score": 5})
    assert early.status_code == 409 and early.json["error"]["code"] == "not_ratable"
    client.post(f"/console/api/conversations/{conversation_id}/end")
    assert conversation_of(client, world, conversation_id)["rating_wanted"] is True

    for body, status, code in [
        ({"score": 0}, 400, "invalid_request"),
        ({"score": 6}, 400, "invalid_request"),
        ({"score": True}, 400, "invalid_request"),
        ({"score": "5"}, 400, "invalid_request"),
        ({"score": 4, "comment": 7}, 400, "invalid_request"),
        ({"score": 4, "comment": "x" * 1001}, 400, "comment_too_long"),
    ]:
        response = widget(client, world, "POST", f"/conversations/{conversation_id}/rating", json=body)
        assert (response.status_code, response.json["error"]["code"]) == (status, code), body
    other = widget(client, world, "POST", f"/conversations/{conversation_id}/rating", sub="mallory", json={"score": 1})
    assert other.status_code == 404

    given = widget(
        client, world, "POST", f"/conversations/{conversation_id}/rating", json={"score": 4, "comment": " Quick "}
    )
    assert given.status_code == 201 and given.json["rating"] == {"score": 4, "comment": "Quick"}
    again = widget(client, world, "POST", f"/conversations/{conversation_id}/rating", json={"score": 1})
    assert again.status_code == 409 and again.json["error"]["code"] == "already_rated"
    seen = conversation_of(client, world, conversation_id)
    assert seen["rating"] == {"score": 4, "comment": "Quick"} and seen["rating_wanted"] is False
    console = client.get(f"/console/api/conversations/{conversation_id}").json["conversation"]
    assert console["rating"] == {"score": 4, "comment": "Quick"}


def test_a_workstream_can_switch_the_question_off(app, client, world):
    with app.app_context():
        db.session.execute(update(Workstream).values(csat_enabled=False))
        db.session.commit()
    sign_in(client, world)
    conversation_id = customer_says(client, world, "Hi", "r2")["conversation_id"]
    client.post(f"/console/api/conversations/{conversation_id}/end")
    assert conversation_of(client, world, conversation_id)["rating_wanted"] is False
    refused = widget(client, world, "POST", f"/conversations/{conversation_id}/rating", json={"score": 5})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_ratable"
