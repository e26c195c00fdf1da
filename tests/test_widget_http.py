"""The widget's HTTP API through the Flask test client: history pages, sends, CORS and refusals."""

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Conversation, Customer, Message
from tests.support import HOST_ORIGIN


def api(world, path=""):
    return f"/api/widget/workstreams/{world.workstream_id}{path}"


def auth(world, sub="alice", origin=HOST_ORIGIN):
    headers = {"Authorization": f"Bearer {world.token(sub)}"}
    if origin:
        headers["Origin"] = origin
    return headers


def send(client, world, body, client_id, sub="alice"):
    return client.post(api(world, "/messages"), json={"client_id": client_id, "body": body}, headers=auth(world, sub))


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Message))


def test_send_then_read_history_in_pages(client, world):
    for i in range(1, 8):
        assert send(client, world, f"m{i}", f"c{i}").status_code == 201
    (conversation,) = client.get(api(world, "/conversations"), headers=auth(world)).json["conversations"]
    assert conversation["last_seq"] == 7 and not conversation["ended"]
    messages = api(world, f"/conversations/{conversation['id']}/messages")

    page = client.get(messages + "?before=8&limit=3", headers=auth(world)).json["messages"]
    assert [m["seq"] for m in page] == [5, 6, 7]
    page = client.get(messages + "?before=5&limit=3", headers=auth(world)).json["messages"]
    assert [m["seq"] for m in page] == [2, 3, 4]
    page = client.get(messages + "?after=5", headers=auth(world)).json["messages"]
    assert [m["body"] for m in page] == ["m6", "m7"]


def test_a_repeated_client_id_returns_the_stored_message(client, world, app):
    first = send(client, world, "Hello", "c1")
    again = send(client, world, "Hello", "c1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["message"]["seq"] == first.json["message"]["seq"]
    assert stored(app) == 1


def test_cors_headers_only_for_allowed_origins(client, world):
    allowed = client.options(
        api(world, "/messages"), headers={"Origin": HOST_ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == HOST_ORIGIN
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]

    foreign = client.options(
        api(world, "/messages"), headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert foreign.status_code == 403 and "Access-Control-Allow-Origin" not in foreign.headers


def test_a_foreign_origin_cannot_send_even_with_a_valid_token(client, world, app):
    response = client.post(
        api(world, "/messages"),
        json={"client_id": "c1", "body": "hi"},
        headers=auth(world, origin="http://evil.example"),
    )
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden_origin"
    assert stored(app) == 0


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"client_id": "c1", "body": ""}, "empty_message"),
        ({"client_id": "c1", "body": "x" * 4001}, "message_too_long"),
        ({"client_id": "c1"}, "invalid_request"),
        ({"body": "hi"}, "invalid_request"),
        ([1, 2], "invalid_json"),
    ],
)
def test_bad_sends_get_a_clear_error_and_store_nothing(client, world, app, payload, code):
    response = client.post(api(world, "/messages"), json=payload, headers=auth(world))
    assert response.status_code == 400 and response.json["error"]["code"] == code
    assert stored(app) == 0


def test_malformed_json_is_refused(client, world, app):
    response = client.post(
        api(world, "/messages"), data="{nope", headers={**auth(world), "Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_json"
    assert stored(app) == 0


def test_unknown_workstream(client, world):
    response = client.post(
        "/api/widget/workstreams/nope/messages", json={"client_id": "c1", "body": "hi"}, headers=auth(world)
    )
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_workstream"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("", "token_missing"),
        ("Bearer ", "token_missing"),
        ("Bearer garbage", "token_malformed"),
        ("Basic a", "token_missing"),
    ],
)
def test_missing_or_bad_tokens_are_refused(client, world, app, header, code):
    response = client.post(
        api(world, "/messages"), json={"client_id": "c1", "body": "hi"}, headers={"Authorization": header}
    )
    assert response.status_code == 401 and response.json["error"]["code"] == code
    assert stored(app) == 0


def test_a_token_for_another_workstreams_setting_is_refused(client, world, app):
    from tests.support import seed

    other = seed(app, [HOST_ORIGIN])
    response = client.post(
        api(world, "/messages"),
        json={"client_id": "c1", "body": "hi"},
        headers={"Authorization": f"Bearer {other.token('alice')}"},
    )
    assert response.status_code == 401 and response.json["error"]["code"] == "token_bad_signature"
    assert stored(app) == 0


def test_an_expired_token_is_refused_with_its_own_code(client, world):
    token = world.token("alice", lifetime=-120)
    response = client.get(api(world, "/conversations"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.json["error"]["code"] == "token_expired"


def test_another_customers_conversation_is_not_found(client, world, app):
    conversation_id = send(client, world, "private", "c1", sub="alice").json["message"]["conversation_id"]
    for path in [f"/conversations/{conversation_id}/messages", f"/conversations/{conversation_id}/messages?after=0"]:
        response = client.get(api(world, path), headers=auth(world, "mallory"))
        assert response.status_code == 404 and "private" not in response.get_data(as_text=True)
    listing = client.get(api(world, "/conversations"), headers=auth(world, "mallory")).json
    assert listing == {"conversations": []}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1


@pytest.mark.parametrize(
    "query", ["?limit=0", "?limit=101", "?limit=abc", "?before=0", "?after=-1", "?after=1&before=3"]
)
def test_bad_cursors_are_refused(client, world, query):
    conversation_id = send(client, world, "hi", "c1").json["message"]["conversation_id"]
    response = client.get(api(world, f"/conversations/{conversation_id}/messages{query}"), headers=auth(world))
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request"


def test_widget_script_is_served_to_any_origin(client):
    response = client.get("/widget.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_the_preview_needs_no_token_stores_nothing_and_checks_the_origin(client, world, app):
    path = f"/api/widget/workstreams/{world.workstream_id}/preview"
    response = client.get(path + "?locale=fi", headers={"Origin": HOST_ORIGIN})
    assert response.status_code == 200
    assert response.json["workstream"] == {
        "id": world.workstream_id,
        "name": "Support",
        "mode": "persistent",
        "customer_can_end": False,
        "hide_when_closed": False,
    }
    assert response.json["hours"]["open"] is True
    assert client.get(path, headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/api/widget/workstreams/nope/preview", headers={"Origin": HOST_ORIGIN}).status_code == 404
    bad = client.get(path + "?locale=fi;DROP", headers={"Origin": HOST_ORIGIN})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "invalid_request"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0
