"""The API for the site's backend: API keys (hashed at rest, scoped to workstreams, revoked), reading
conversations and posting an agent's message through the console's lifecycle function."""

import hashlib

import pytest
from sqlalchemy import select

from app import api_keys, conversations, customer_auth, routing, workstreams
from app.agents import add_agent
from app.extensions import db
from app.models import Agent, ApiKey, AuditEntry, Customer


@pytest.fixture
def admin(app, client):
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    return client


@pytest.fixture
def setup(app, world):
    """A key for the seeded workstream, Alice's conversation there with Ada, and one elsewhere."""
    with app.app_context():
        db.session.execute(db.update(Agent).values(presence="offline"))
        ada = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
        routing.seen(ada.id)
        routing.set_presence(ada, "available")
        alice = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, "alice", "Alice"))
        mine, _ = conversations.post_customer_message(world.workstream_id, alice.id, "c1", "Where is my order?")
        other_ws = workstreams.create(
            {"name": "Other", "mode": "persistent", "auth_setting_id": world.auth_setting_id, "allowed_origins": []}
        )
        elsewhere, _ = conversations.post_customer_message(other_ws.id, alice.id, "c1", "Elsewhere")
        _row, key = api_keys.create({"name": "Shop backend", "workstream_ids": [world.workstream_id]})
        return {
            "key": key,
            "ada": ada.id,
            "conversation": mine.conversation_id,
            "elsewhere": elsewhere.conversation_id,
            "other_ws": other_ws.id,
        }


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_a_key_lists_reads_and_posts_as_the_assigned_agent(app, client, world, setup):
    headers = bearer(setup["key"])
    listed = client.get(f"/api/server/workstreams/{world.workstream_id}/conversations", headers=headers)
    assert listed.status_code == 200
    [summary] = listed.json["conversations"]
    assert summary["id"] == setup["conversation"] and summary["customer"]["sub"] == "alice"
    assert summary["agent"]["name"] == "Ada"
    active = client.get(
        f"/api/server/workstreams/{world.workstream_id}/conversations?status=closed", headers=headers
    ).json
    assert active == {"conversations": []}

    path = f"/api/server/conversations/{setup['conversation']}"
    assert client.get(path, headers=headers).json["conversation"]["status"] == "active"
    sent = client.post(
        path + "/messages", headers=headers, json={"agent_id": setup["ada"], "client_id": "crm-1", "body": "Shipped!"}
    )
    assert sent.status_code == 201 and sent.json["message"]["sender"] == "agent"
    assert sent.json["message"]["sender_name"] == "Ada" and sent.json["message"]["seq"] == 2
    again = client.post(
        path + "/messages", headers=headers, json={"agent_id": setup["ada"], "client_id": "crm-1", "body": "Shipped!"}
    )
    assert again.status_code == 200 and again.json["message"]["seq"] == 2
    bodies = [m["body"] for m in client.get(path + "/messages?after=0", headers=headers).json["messages"]]
    assert bodies == ["Where is my order?", "Shipped!"]


def test_a_key_sees_nothing_outside_its_workstreams(client, setup):
    headers = bearer(setup["key"])
    assert client.get(f"/api/server/workstreams/{setup['other_ws']}/conversations", headers=headers).status_code == 404
    for path in ("", "/messages"):
        response = client.get(f"/api/server/conversations/{setup['elsewhere']}{path}", headers=headers)
        assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    posted = client.post(
        f"/api/server/conversations/{setup['elsewhere']}/messages",
        headers=headers,
        json={"agent_id": setup["ada"], "client_id": "x", "body": "no"},
    )
    assert posted.status_code == 404


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer pcsk_", "Bearer pcsk_nothing_here", "Basic abc", "Bearer not-a-key"],
)
def test_requests_without_a_valid_key_are_refused(client, world, setup, header):
    headers = {"Authorization": header} if header else {}
    response = client.get(f"/api/server/workstreams/{world.workstream_id}/conversations", headers=headers)
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_api_key"


def test_a_tampered_key_is_refused(client, world, setup):
    key = setup["key"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    response = client.get(f"/api/server/workstreams/{world.workstream_id}/conversations", headers=bearer(tampered))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"client_id": "a", "body": "x"}, 400, "invalid_request"),
        ({"agent_id": "1", "client_id": "a", "body": "x"}, 400, "invalid_request"),
        ({"agent_id": 999, "client_id": "a", "body": "x"}, 400, "invalid_request"),
        ({"agent_id": "ADA", "client_id": "a", "body": ""}, 400, "empty_message"),
        ({"agent_id": "BO", "client_id": "a", "body": "x"}, 409, "wrong_state"),
    ],
)
def test_bad_messages_are_refused(app, client, setup, payload, status, code):
    with app.app_context():
        ids = {"ADA": setup["ada"], "BO": db.session.scalar(select(Agent.id).where(Agent.email == "bo@example.com"))}
    payload = {**payload, "agent_id": ids.get(payload.get("agent_id"), payload.get("agent_id"))}
    response = client.post(
        f"/api/server/conversations/{setup['conversation']}/messages", headers=bearer(setup["key"]), json=payload
    )
    assert response.status_code == status and response.json["error"]["code"] == code, response.json


def test_keys_are_hashed_at_rest_shown_once_and_revoked_through_the_admin_api(app, admin, client, world):
    created = admin.post(
        "/admin/api/api-keys", json={"name": "CRM", "workstream_ids": [world.workstream_id, world.workstream_id]}
    )
    assert created.status_code == 201
    key = created.json["api_key"]["key"]
    assert key.startswith(created.json["api_key"]["prefix"] + "_")
    assert created.json["api_key"]["workstream_ids"] == [world.workstream_id]
    with app.app_context():
        row = db.session.scalar(select(ApiKey))
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in " ".join(str(v) for v in vars(row).values())
    listed = admin.get("/admin/api/api-keys").json["api_keys"]
    assert "key" not in listed[0] and listed[0]["last_used_at"] is None
    path = f"/api/server/workstreams/{world.workstream_id}/conversations"
    assert client.get(path, headers=bearer(key)).status_code == 200
    assert admin.get("/admin/api/api-keys").json["api_keys"][0]["last_used_at"] is not None
    revoked = admin.delete(f"/admin/api/api-keys/{created.json['api_key']['id']}")
    assert revoked.status_code == 200 and revoked.json["api_key"]["revoked_at"] is not None
    assert client.get(path, headers=bearer(key)).status_code == 401
    for bad in ({"name": "x"}, {"name": "", "workstream_ids": ["a"]}, {"name": "x", "workstream_ids": ["nope"]},
                {"name": "x", "workstream_ids": [world.workstream_id], "scope": "all"}):  # fmt: skip
        response = admin.post("/admin/api/api-keys", json=bad)
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_api_key"
    assert admin.delete("/admin/api/api-keys/999").status_code == 404


def test_cli_creates_lists_and_revokes(app, client, world):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-api-key", "Shop", "--workstream", world.workstream_id])
    assert result.exit_code == 0, result.output
    key = result.output.split("Key: ")[1].strip()
    path = f"/api/server/workstreams/{world.workstream_id}/conversations"
    assert client.get(path, headers=bearer(key)).status_code == 200
    listed = runner.invoke(args=["list-api-keys"]).output
    assert "\tShop\t" in listed and key not in listed
    assert runner.invoke(args=["create-api-key", "Bad", "--workstream", "nope"]).exit_code == 1
    key_id = listed.split("\t")[0]
    assert runner.invoke(args=["revoke-api-key", key_id]).exit_code == 0
    assert client.get(path, headers=bearer(key)).status_code == 401


def test_the_site_erases_its_deleted_user_with_its_key(app, client, world, setup):
    headers = bearer(setup["key"])
    # Alice also wrote in a workstream this key cannot see: the site's key may not erase that.
    refused = client.post("/api/server/customers/erase", headers=headers, json={"sub": "alice"})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "out_of_scope"
    with app.app_context():
        assert db.session.scalar(select(Customer).where(Customer.sub == "alice")) is not None
        bob = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, "bob", "Bob"))
        conversations.post_customer_message(world.workstream_id, bob.id, "b1", "Delete my account")
    erased = client.post("/api/server/customers/erase", headers=headers, json={"sub": "bob"})
    assert erased.status_code == 200
    assert erased.json["erased"]["customers"] == 1 and erased.json["erased"]["conversations"] == 1
    with app.app_context():
        assert db.session.scalar(select(Customer).where(Customer.sub == "bob")) is None
        [audit] = db.session.scalars(select(AuditEntry).where(AuditEntry.target_kind == "customer")).all()
        assert (audit.action, audit.actor_kind, audit.actor_label) == ("customer_erased", "api", "API key Shop backend")
    nobody = client.post("/api/server/customers/erase", headers=headers, json={"sub": "bob"})
    assert nobody.json["erased"]["customers"] == 0
    assert client.post("/api/server/customers/erase", headers=headers, json={"sub": ""}).status_code == 400
