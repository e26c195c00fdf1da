"""Over HTTP: the token's `email` claim, the workstream's email settings in the admin API, and the
widget's half of an email's link back."""

import pytest
from sqlalchemy import func, select

from app import customer_auth, signed_links
from app.agents import add_agent
from app.demo import demo_workstream, ensure
from app.extensions import db
from app.models import Conversation, Customer, Workstream
from tests.support import HOST_ORIGIN


def send(client, world, token: str):
    return client.post(
        f"/api/widget/workstreams/{world.workstream_id}/messages",
        json={"client_id": "c1", "body": "hi"},
        headers={"Authorization": f"Bearer {token}", "Origin": HOST_ORIGIN},
    )


@pytest.mark.parametrize(
    "email",
    ["", "not-an-address", "a@b", "Ada <ada@example.com>", "ada@example.com, eve@example.com", 42, ["a@b.fi"],
     "ada @example.com", "x" * 250 + "@example.com"],
)  # fmt: skip
def test_a_malformed_email_claim_is_refused_and_stores_nothing(client, world, app, email):
    response = send(client, world, world.token("alice", email=email))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_invalid_email"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0


def test_the_email_claim_is_kept_with_the_customer_and_follows_the_latest_token(client, world, app):
    assert send(client, world, world.token("alice", email="alice@example.com")).status_code == 201
    with app.app_context():
        assert db.session.scalar(select(Customer.email)) == "alice@example.com"
    send(client, world, world.token("alice", email="alice.new@example.fi"))
    with app.app_context():
        assert db.session.scalar(select(Customer.email)) == "alice.new@example.fi"
    # A token without the claim: the site no longer gives an address, so none is used.
    send(client, world, world.token("alice"))
    with app.app_context():
        assert db.session.scalar(select(Customer.email)) is None


@pytest.fixture
def admin(app, client):
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    return client


def test_without_smtp_url_the_admin_api_refuses_to_turn_emails_on(admin, app, world):
    assert app.config["SMTP_URL"] is None
    path = f"/admin/api/workstreams/{world.workstream_id}"
    refused = admin.patch(path, json={"notify_email_after_minutes": 5, "name": "Renamed"})
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "email_not_configured" and "SMTP_URL" in refused.json["error"]["message"]
    listed = admin.get("/admin/api/workstreams").json["workstreams"][0]
    assert listed["name"] == "Support" and listed["notify_email_after_minutes"] is None
    # Turning it off needs no SMTP server.
    off = admin.patch(path, json={"notify_email_after_minutes": None})
    assert off.status_code == 200 and off.json["workstream"]["notify_email_after_minutes"] is None
    created = admin.post(
        "/admin/api/workstreams", json={"name": "Mail", "auth_setting_id": 1, "notify_email_after_minutes": 3}
    )
    assert created.status_code == 400 and created.json["error"]["code"] == "email_not_configured"


def test_with_smtp_url_the_settings_are_validated_and_kept(admin, app, world):
    app.config["SMTP_URL"] = "smtp://127.0.0.1:2525"
    path = f"/admin/api/workstreams/{world.workstream_id}"
    changed = admin.patch(path, json={"notify_email_after_minutes": 30, "notify_return_url": "https://shop.example/a"})
    assert changed.status_code == 200, changed.json
    assert changed.json["workstream"]["notify_email_after_minutes"] == 30
    assert changed.json["workstream"]["notify_return_url"] == "https://shop.example/a"
    for bad in (
        {"notify_email_after_minutes": 0},
        {"notify_email_after_minutes": "10"},
        {"notify_return_url": "ftp://x"},
    ):
        answer = admin.patch(path, json=bad)
        assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_workstream", bad
    live = admin.post("/admin/api/workstreams", json={"name": "Live", "mode": "live"})
    persistent = admin.post("/admin/api/workstreams", json={"name": "Mine", "auth_setting_id": 1})
    assert live.json["workstream"]["notify_email_after_minutes"] is None
    assert persistent.json["workstream"]["notify_email_after_minutes"] == 10


def test_the_widget_asks_which_conversation_a_return_link_opens(client, world, app):
    token = world.token("alice", email="alice@example.com")
    send(client, world, token)
    with app.app_context():
        conversation = db.session.scalar(select(Conversation))
        conversation.workstream.notify_return_url = "https://shop.example/account"
        db.session.commit()
        link = signed_links.return_link(conversation).split("#persistent-chat=")[1]
        conversation_id = conversation.id
    path = f"/api/widget/workstreams/{world.workstream_id}/return-link"
    headers = {"Authorization": f"Bearer {token}", "Origin": HOST_ORIGIN}
    opened = client.get(path, query_string={"link": link}, headers=headers)
    assert opened.status_code == 200 and opened.json == {"conversation_id": conversation_id}
    assert opened.headers["Access-Control-Allow-Origin"] == HOST_ORIGIN

    # The link grants nothing by itself: another customer signed in on that page opens nothing.
    other = {"Authorization": f"Bearer {world.token('mallory')}", "Origin": HOST_ORIGIN}
    assert client.get(path, query_string={"link": link}, headers=other).status_code == 404
    assert client.get(path, query_string={"link": link}).status_code == 401
    forged = client.get(path, query_string={"link": link[:-2] + "xx"}, headers=headers)
    assert forged.status_code == 400 and forged.json["error"]["code"] == "invalid_link"


def test_create_workstream_sets_the_email_settings_and_needs_smtp_url_to_turn_them_on(app, world):
    runner = app.test_cli_runner()
    setting = str(world.auth_setting_id)
    refused = runner.invoke(args=["create-workstream", "Mail", "--auth-setting", setting, "--notify-email-after", "5"])
    assert refused.exit_code != 0 and "SMTP_URL" in refused.output
    quiet = runner.invoke(
        args=["create-workstream", "Quiet", "--auth-setting", setting, "--no-email", "--return-url", "https://s.fi/a"]
    )
    assert quiet.exit_code == 0, quiet.output
    app.config["SMTP_URL"] = "log://"
    loud = runner.invoke(args=["create-workstream", "Loud", "--auth-setting", setting, "--notify-email-after", "3"])
    assert loud.exit_code == 0, loud.output
    with app.app_context():
        found = {w.name: w for w in db.session.scalars(select(Workstream))}
        assert "Mail" not in found
        assert (found["Quiet"].notify_email_after_minutes, found["Quiet"].notify_return_url) == (None, "https://s.fi/a")
        assert found["Loud"].notify_email_after_minutes == 3


def test_the_demo_site_remembers_its_signed_in_customer_for_the_link_back(app, client):
    with app.app_context():
        ensure("http://127.0.0.1:5000", lambda _line: None)
        workstream = demo_workstream()
        assert workstream.notify_return_url == "http://127.0.0.1:5000/demo/"
        assert workstream.notify_email_after_minutes == 1
    assert b'data-customer="bob"' in client.get("/demo/?customer=bob").data
    assert b'data-customer="bob"' in client.get("/demo/").data
    with app.app_context():
        token = client.get("/demo/token?customer=bob").json["token"]
        assert customer_auth.verify(demo_workstream(), token).email == "bob@example.com"
