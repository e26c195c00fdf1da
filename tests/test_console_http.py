"""The console's pages and JSON API through the Flask test client."""

import re

import pytest

from tests.support import HOST_ORIGIN, app_for


def sign_in(client, world, key="ada"):
    email, password = world.agents[key]
    return client.post("/console/login", data={"email": email, "password": password})


def customer_says(client, world, body, client_id, sub="alice"):
    return client.post(
        f"/api/widget/workstreams/{world.workstream_id}/messages",
        json={"client_id": client_id, "body": body},
        headers={"Authorization": f"Bearer {world.token(sub, 'Alice A')}", "Origin": HOST_ORIGIN},
    ).json["message"]


def test_sign_in_makes_the_agent_available_and_lands_on_the_console(client, world):
    response = sign_in(client, world)
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")
    assert client.get("/console/api/me").json["agent"]["presence"] == "available"
    assert client.get("/console/").status_code == 200


def test_wrong_password_is_refused(client, world):
    email, _ = world.agents["ada"]
    response = client.post("/console/login", data={"email": email, "password": "wrong"})
    assert response.status_code == 401 and b"Wrong email or password" in response.data
    assert client.get("/console/api/me").status_code == 401


def test_pages_redirect_and_api_answers_401_when_signed_out(client):
    assert client.get("/console/").status_code == 302
    response = client.get("/console/api/conversations")
    assert response.status_code == 401 and response.json["error"]["code"] == "not_authenticated"


def test_sign_in_never_redirects_off_site(client, world):
    email, password = world.agents["ada"]
    response = client.post(
        "/console/login", data={"email": email, "password": password, "next": "//evil.example/console"}
    )
    assert response.headers["Location"] == "/console/"


def test_session_cookie_is_httponly_and_samesite_lax(client, world):
    cookie = sign_in(client, world).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_agent_answers_a_new_conversation_and_ends_it(client, world):
    sign_in(client, world)
    first = customer_says(client, world, "Hello?", "c1")
    lists = client.get("/console/api/conversations").json
    assert [c["id"] for c in lists["mine"]] == [first["conversation_id"]]
    assert lists["mine"][0]["customer"]["display_name"] == "Alice A"
    assert lists["mine"][0]["last_message"]["body"] == "Hello?"

    path = f"/console/api/conversations/{first['conversation_id']}"
    reply = client.post(path + "/messages", json={"client_id": "a1", "body": "Hi Alice"})
    assert reply.status_code == 201 and reply.json["message"]["seq"] == 2
    view = client.get(path).json
    assert [m["body"] for m in view["messages"]] == ["Hello?", "Hi Alice"] and view["complete"]

    assert client.post(path + "/end").json["conversation"]["status"] == "wrap_up"
    lists = client.get("/console/api/conversations").json
    assert lists["mine"] == [] and [c["id"] for c in lists["recent"]] == [first["conversation_id"]]
    late = client.post(path + "/messages", json={"client_id": "a2", "body": "still there?"})
    assert late.status_code == 409 and late.json["error"]["code"] == "wrong_state"

    second = customer_says(client, world, "One more thing", "c2")
    view = client.get(f"/console/api/conversations/{second['conversation_id']}").json
    assert [c["id"] for c in view["history"]] == [first["conversation_id"]]


def test_queue_and_take(client, world, app):
    queued = customer_says(client, world, "Anyone?", "c1")
    other = app.test_client()
    sign_in(client, world, "ada")
    # Signing in took the queue; a second agent can no longer take it.
    sign_in(other, world, "bo")
    response = other.post(f"/console/api/conversations/{queued['conversation_id']}/take")
    assert response.status_code == 409 and response.json["error"]["code"] == "wrong_state"


def test_the_queue_lists_its_first_conversations_and_the_rest_by_id(app, client, world):
    app.config["CONSOLE_QUEUE_WINDOW"] = 2
    queued = [customer_says(client, world, "Anyone?", f"c{i}", sub=f"queued{i}")["conversation_id"] for i in range(5)]
    sign_in(client, world, "ada")
    client.post("/console/api/presence", json={"presence": "away"})
    lists = client.get("/console/api/conversations").json
    # Signing in made Ada available, and routing gave her the first two.
    assert [c["id"] for c in lists["mine"]] == queued[1::-1]
    assert [c["id"] for c in lists["queue"]] == queued[2:4]
    assert [conversation_id for conversation_id, _version in lists["queue_rest"]] == queued[4:]
    assert lists["limits"] == {"queue": 2, "recent": 20}

    found = client.get(f"/console/api/summaries?ids={queued[4]},{queued[0]},999999").json["conversations"]
    assert [(c["id"], c["last_message"]["body"]) for c in found] == [(queued[0], "Anyone?"), (queued[4], "Anyone?")]
    assert client.get("/console/api/summaries").json == {"conversations": []}
    for query in ("ids=x", "ids=1,,2", "ids=0", "ids=-3", f"ids={2**31}", "ids=" + ",".join(["1"] * 101)):
        response = client.get(f"/console/api/summaries?{query}")
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request", query


@pytest.mark.parametrize(
    ("method", "path", "payload", "status", "code"),
    [
        ("get", "/console/api/conversations/999", None, 404, "not_found"),
        ("post", "/console/api/conversations/999/messages", {"client_id": "a", "body": "x"}, 404, "not_found"),
        ("post", "/console/api/conversations/999/end", None, 404, "not_found"),
        ("post", "/console/api/conversations/CID/messages", {"client_id": "a", "body": ""}, 400, "empty_message"),
        ("post", "/console/api/conversations/CID/messages", {"client_id": "a", "body": "x" * 4001}, 400,
         "message_too_long"),
        ("post", "/console/api/conversations/CID/messages", "nope", 400, "invalid_json"),
        ("get", "/console/api/conversations/CID/messages?before=0", None, 400, "invalid_request"),
    ],
)  # fmt: skip
def test_bad_console_requests(client, world, method, path, payload, status, code):
    sign_in(client, world)
    conversation_id = customer_says(client, world, "Hello", "c1")["conversation_id"]
    response = getattr(client, method)(path.replace("CID", str(conversation_id)), json=payload)
    assert response.status_code == status and response.json["error"]["code"] == code
    assert client.get(f"/console/api/conversations/{conversation_id}").json["conversation"]["last_seq"] == 1


def test_state_changes_need_the_csrf_token(world, app):
    csrf_app = app_for(app.instance_path, TESTING=True)
    client = csrf_app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    email, password = world.agents["ada"]
    assert client.post("/console/login", data={"email": email, "password": password}).status_code == 400
    assert (
        client.post("/console/login", data={"email": email, "password": password, "csrf_token": token}).status_code
        == 302
    )

    conversation_id = customer_says(client, world, "Hello", "c1")["conversation_id"]
    path = f"/console/api/conversations/{conversation_id}/end"
    refused = client.post(path)
    assert refused.status_code == 400 and refused.json["error"]["code"] == "csrf_failed"
    meta = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/console/").get_data(as_text=True))
    assert client.post(path, headers={"X-CSRFToken": meta.group(1)}).status_code == 200


def test_head_on_the_sign_in_page_is_not_a_sign_in_attempt(client):
    assert client.head("/console/login").status_code == 200


def test_console_pages_carry_a_strict_content_security_policy(client):
    policy = client.get("/console/login").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
