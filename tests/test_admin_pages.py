"""The admin pages over HTTP: admins only on every route, form refusals shown beside their field with
nothing saved, and the audit log of every change (pages, JSON API and CLI), secrets redacted."""

import html
import json
import re
from io import BytesIO

import pytest
from sqlalchemy import func, select

from app import api_keys, appearance, audit, bots, webhooks
from app.agents import add_agent
from app.conversations import customer_for
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, AuditEntry, Conversation, Workstream
from tests.support import KID, rsa_key_pair

ROOT = ("root@example.com", "root password, long enough")


def sign_in(client, email: str, password: str):
    response = client.post("/console/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.data
    return client


@pytest.fixture
def admin(app, client):
    with app.app_context():
        add_agent(*ROOT[:1], "Root", "admin", ROOT[1])
    return sign_in(client, *ROOT)


def admin_rules(app) -> list[tuple[str, str]]:
    """Every admin route, with made-up ids in its variables."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin"):
            continue
        path = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if "int:" in m.group(0) else "x", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_every_admin_route_is_for_admins_only(app, client, world):
    routes = admin_rules(app)
    assert len(routes) > 30  # pages and API alike
    anonymous = app.test_client()
    for method, path in routes:
        answer = anonymous.open(path, method=method)
        if "/api/" in path:
            assert answer.status_code == 401, (method, path)
        else:
            assert answer.status_code == 302 and "/console/login" in answer.location, (method, path)
    email, password = world.agents["ada"]
    agent = sign_in(client, email, password)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    for method, path in routes:
        answer = agent.open(path, method=method, json={} if method != "GET" and "/api/" in path else None)
        assert answer.status_code == 403, (method, path, answer.status_code)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == before


def test_the_sign_in_page_returns_an_admin_to_the_admin_page_asked_for(app, client):
    with app.app_context():
        add_agent(*ROOT[:1], "Root", "admin", ROOT[1])
    assert client.get("/admin/agents").location.endswith("/console/login?next=/admin/agents")
    answer = client.post("/console/login?next=/admin/agents", data={"email": ROOT[0], "password": ROOT[1]})
    assert answer.location.endswith("/admin/agents")


def test_a_refused_setting_is_shown_beside_its_field_and_nothing_changes(admin, app, world):
    path = f"/admin/workstreams/{world.workstream_id}"
    form = {
        "name": "Support",
        "auth_setting_id": str(world.auth_setting_id),
        "allowed_origins": "https://shop.example",
        "capacity_cost": "99999",
        "allowed_presences": ["available"],
        "accept_seconds": "120",
        "wrap_up_mode": "always",
        "auto_close_open_seconds": "3600",
        "auto_close_waiting_seconds": "3600",
        "wrap_up_seconds": "60",
        "affinity": "1",
    }
    answer = admin.post(path, data=form)
    assert answer.status_code == 400
    page = answer.data.decode()
    assert 'id="error-capacity_cost"' in page and "capacity_cost must be an integer from 1 to 10000" in page
    assert re.search(r'name="capacity_cost"[^>]*aria-invalid="true"', page)
    with app.app_context():
        assert db.session.get(Workstream, world.workstream_id).capacity_cost == 34

    answer = admin.post(path, data={**form, "capacity_cost": "50", "allowed_origins": "not an origin"})
    assert answer.status_code == 400 and 'id="error-allowed_origins"' in answer.data.decode()

    assert admin.post(path, data={**form, "capacity_cost": "50"}).status_code == 200
    with app.app_context():
        saved = db.session.get(Workstream, world.workstream_id)
        assert (saved.capacity_cost, saved.origins()) == (50, ["https://shop.example"])
        entry = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        changes = json.loads(entry.changes)
        assert (entry.actor_label, entry.action) == (ROOT[0], "workstream.update")
        assert changes["capacity_cost"] == [34, 50]


def test_the_hours_editor_saves_intervals_and_holidays_and_previews_them(admin, app, world):
    base = f"/admin/workstreams/{world.workstream_id}/hours"
    days = {f"day_{d}": "" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    form = {**days, "timezone": "Europe/Helsinki", "day_tue": "08:00-12:00, 13:00-16:00", "holidays": "2026-12-24"}
    bad = admin.post(base, data={**form, "day_wed": "9 to 5"})
    assert bad.status_code == 400 and 'id="error-day_wed"' in bad.data.decode()
    overlapping = admin.post(base, data={**form, "day_thu": "08:00-12:00, 11:00-13:00"})
    assert overlapping.status_code == 400 and 'id="error-day_thu"' in overlapping.data.decode()
    assert admin.post(base, data=form).status_code == 200
    with app.app_context():
        stored = json.loads(db.session.get(Workstream, world.workstream_id).hours)
    assert stored["weekly"]["tue"] == [["08:00", "12:00"], ["13:00", "16:00"]] and stored["holidays"] == ["2026-12-24"]
    preview = admin.post(base + "/preview", data=form).json
    assert re.fullmatch(r"(Open now · closes|Closed now · opens) \w{3} .*\(Europe/Helsinki\)", preview["text"])
    assert admin.post(base + "/preview", data={**form, "timezone": "Mars/Base"}).json["field"] == "timezone"
    assert admin.post(base + "/preview", data={**form, "always_open": "1"}).json["text"] == "Open now (always open)"


def test_automated_messages_refuse_unknown_placeholders(admin, app, world):
    path = f"/admin/workstreams/{world.workstream_id}/messages"
    answer = admin.post(path, data={"enabled_agent_joined": "1", "text_agent_joined_en": "{AgentNmae} is here"})
    assert answer.status_code == 400
    page = answer.data.decode()
    assert 'id="error-text_agent_joined_en"' in page and "unknown placeholder {AgentNmae}" in page
    answer = admin.post(
        path, data={"enabled_agent_joined": "1", "text_agent_joined_fi": "{AgentName} ({plan}) on täällä"}
    )
    assert answer.status_code == 200
    with app.app_context():
        settings = json.loads(db.session.get(Workstream, world.workstream_id).automated_messages)
    assert settings["agent_joined"] == {"enabled": True, "texts": {"fi": "{AgentName} ({plan}) on täällä"}}
    assert settings["agent_ended"] == {"enabled": False}


def test_an_accent_is_refused_with_its_measured_contrast_and_a_good_one_gets_readable_text(admin, app, world):
    path = f"/admin/workstreams/{world.workstream_id}/appearance"
    answer = admin.post(path, data={"accent": "#777777", "position": "left", "greeting_en": "Hello"})
    assert answer.status_code == 400 and "(the best is 4.48:1)" in answer.data.decode()
    assert admin.post(path, data={"accent": "#ffd400", "position": "left", "greeting_en": " Hello "}).status_code == 200
    with app.app_context():
        look = appearance.for_widget(db.session.get(Workstream, world.workstream_id))
    assert look == {
        "accent": "#ffd400",
        "accent_text": "#111111",
        "position": "left",
        "texts": {"en": {"greeting": "Hello"}},
    }
    assert appearance.text_colour("#2458d6")[0] == "#ffffff"


def test_the_embed_page_gives_the_snippet_for_the_mode_and_checks_origins(admin, app, world):
    page = html.unescape(admin.get(f"/admin/workstreams/{world.workstream_id}/embed?origin=http://127.0.0.1:9/").text)
    assert f'data-workstream="{world.workstream_id}" data-auth-function="getChatToken" async>' in page
    assert "is not allowed" in page
    live = admin.post("/admin/workstreams", data={"name": "Live", "mode": "live", "distribution": "push"})
    live_id = live.location.rsplit("/", 1)[1].split("?")[0]
    page = html.unescape(admin.get(f"/admin/workstreams/{live_id}/embed").text)
    assert f'data-workstream="{live_id}" async>' in page and "data-auth-function" not in page


def test_test_a_token_shows_the_claims_or_the_exact_refusal(admin, world):
    path = f"/admin/auth-settings/{world.auth_setting_id}/test-token"
    page = html.unescape(admin.post(path, data={"token": world.token("alice", "Alice")}).text)
    assert "Accepted: customer 'alice'." in page and '<code>"Alice"</code>' in page
    assert f'<code>"{KID}"</code>' in page  # the header's kid
    expired = admin.post(path, data={"token": world.token("alice", lifetime=-120)}).data.decode()
    assert "<code>token_expired</code>: The token has expired." in expired
    garbage = admin.post(path, data={"token": "not a token"}).data.decode()
    assert "<code>token_malformed</code>" in garbage


def test_keys_are_added_pasted_or_uploaded_with_fingerprints_and_refused_when_not_keys(admin, world):
    path = f"/admin/auth-settings/{world.auth_setting_id}/keys"
    _, pem = rsa_key_pair()
    bad = admin.post(path, data={"kid": "bad", "public_key": "hello"})
    assert bad.status_code == 400 and 'id="error-public_key"' in bad.data.decode()
    added = admin.post(path, data={"kid": "2027-01", "public_key": pem}).data.decode()
    assert "Key 2027-01 added. Fingerprint SHA256:" in added
    upload = admin.post(
        path,
        data={"kid": "2027-02", "public_key_file": (BytesIO(pem.encode()), "key.pem")},
        content_type="multipart/form-data",
    )
    assert "Key 2027-02 added." in upload.data.decode()


def test_a_generated_secret_is_shown_once_and_never_logged(admin, app):
    created = admin.post(
        "/admin/auth-settings",
        data={
            "name": "Shared",
            "client_function": "getChatToken",
            "clock_skew_seconds": "60",
            "max_lifetime_seconds": "3600",
            "kid": "1",
            "generate_secret": "1",
        },
    )
    assert created.status_code == 201
    secret = re.search(r'<code id="secret-value">([^<]+)</code>', created.data.decode()).group(1)
    setting_id = re.search(r"/admin/auth-settings/(\d+)/keys", created.data.decode()).group(1)
    assert secret not in admin.get(f"/admin/auth-settings/{setting_id}").data.decode()
    with app.app_context():
        logged = " ".join(e.changes for e in db.session.scalars(select(AuditEntry)))
    assert secret not in logged


def test_agents_are_added_edited_and_deleted_only_without_conversations(admin, app, world):
    created = admin.post(
        "/admin/agents",
        data={"name": "Cy", "email": "cy@example.com", "role": "agent", "capacity": "100", "password": "short"},
    )
    assert created.status_code == 400 and 'id="error-password"' in created.data.decode()
    created = admin.post(
        "/admin/agents", data={"name": "Cy", "email": "cy@example.com", "role": "agent", "capacity": "100"}
    )
    assert created.status_code == 201
    password = re.search(r'<code id="password-value">([^<]+)</code>', created.data.decode()).group(1)
    with app.app_context():
        cy = db.session.scalar(select(Agent).where(Agent.email == "cy@example.com"))
        cy_id = cy.id
    assert sign_in(app.test_client(), "cy@example.com", password)
    edited = admin.post(
        f"/admin/agents/{cy_id}",
        data={"name": "Cy Young", "email": "cy@example.com", "role": "agent", "capacity": "-1"},
    )
    assert edited.status_code == 400 and 'id="error-capacity"' in edited.data.decode()

    email, _ = world.agents["ada"]
    with app.app_context():
        ada = db.session.scalar(select(Agent).where(Agent.email == email))
        customer = customer_for(Identity(world.auth_setting_id, "alice", "Alice"))
        db.session.add(
            Conversation(workstream_id=world.workstream_id, customer_id=customer.id, agent_id=ada.id, status="waiting")
        )
        db.session.commit()
        ada_id = ada.id
    refused = admin.post(f"/admin/agents/{ada_id}/delete")
    assert refused.status_code == 409 and "disable them instead" in refused.data.decode()
    assert admin.post(f"/admin/agents/{cy_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(Agent, cy_id) is None
        actions = [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions[-1] == "agent.delete"


def test_the_last_admin_can_be_neither_disabled_nor_demoted_from_the_page(admin, app):
    with app.app_context():
        root_id = db.session.scalar(select(Agent.id).where(Agent.email == ROOT[0]))
    answer = admin.post(f"/admin/agents/{root_id}/disable")
    assert answer.status_code == 409 and "last admin" in answer.data.decode()
    answer = admin.post(
        f"/admin/agents/{root_id}", data={"name": "Root", "email": ROOT[0], "role": "agent", "capacity": "100"}
    )
    assert answer.status_code == 409
    with app.app_context():
        root = db.session.get(Agent, root_id)
        assert (root.role, root.disabled_at) == ("admin", None)


def test_the_audit_log_lists_api_and_cli_changes_newest_first_with_paging_and_no_secrets(admin, app, world):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-agent", "dee@example.com", "--name", "Dee"]).exit_code == 0
    dee = admin.get("/admin/api/agents").json["agents"]
    dee_id = next(a["id"] for a in dee if a["email"] == "dee@example.com")
    assert admin.patch(f"/admin/api/agents/{dee_id}", json={"capacity": 50}).status_code == 200
    assert (
        admin.post(f"/admin/api/agents/{dee_id}/password", json={"password": "a new long password"}).status_code == 200
    )
    entries = admin.get("/admin/api/audit").json["entries"]
    assert [(e["action"], e["actor"]["label"]) for e in entries[:3]] == [
        ("agent.password", ROOT[0]),
        ("agent.update", ROOT[0]),
        ("agent.create", "command line"),
    ]
    assert entries[0]["changes"] == {"password": ["[redacted]", "[redacted]"]}
    assert entries[1]["changes"] == {"capacity": [100, 50]}
    assert "a new long password" not in json.dumps(entries)

    for n in range(audit.PAGE_SIZE + 1):
        admin.patch(f"/admin/api/agents/{dee_id}", json={"capacity": 10 + n})
    first = admin.get("/admin/audit").data.decode()
    assert first.count("<td>agent.update</td>") == audit.PAGE_SIZE
    older = re.search(r'href="(/admin/audit\?before=\d+)">Older changes', first).group(1)
    second = admin.get(older).data.decode()
    assert "agent.create" in second and "command line" in second


def test_email_retention_and_rating_settings_are_on_the_settings_page(admin, app, world):
    path = f"/admin/workstreams/{world.workstream_id}"
    page = admin.get(path).data.decode()
    for field in ("notify_email_after_minutes", "notify_return_url", "retention_days", "csat_enabled"):
        assert f'name="{field}"' in page
    with app.app_context():
        email_after = db.session.get(Workstream, world.workstream_id).notify_email_after_minutes
    form = {
        "name": "Support",
        "auth_setting_id": str(world.auth_setting_id),
        "allowed_origins": "https://shop.example",
        "capacity_cost": "1",
        "allowed_presences": ["available"],
        "accept_seconds": "120",
        "wrap_up_mode": "always",
        "auto_close_open_seconds": "3600",
        "auto_close_waiting_seconds": "3600",
        "wrap_up_seconds": "60",
        "affinity": "1",
        "notify_email_after_minutes": "" if email_after is None else str(email_after),
        "notify_return_url": "https://shop.example/account",
        "retention_days": "0",
    }
    # Unchanged email timing needs no SMTP server; a bad retention is refused beside its field.
    refused = admin.post(path, data=form)
    assert refused.status_code == 400 and 'id="error-retention_days"' in refused.data.decode()
    assert admin.post(path, data={**form, "retention_days": "90"}).status_code == 200
    with app.app_context():
        saved = db.session.get(Workstream, world.workstream_id)
        assert (saved.retention_days, saved.csat_enabled, saved.notify_return_url) == (
            90,
            False,
            "https://shop.example/account",
        )
    app.config["SMTP_URL"] = None
    turned_on = admin.post(path, data={**form, "retention_days": "90", "notify_email_after_minutes": "7"})
    assert email_after != 7 and turned_on.status_code == 400 and "SMTP_URL" in turned_on.data.decode()


def test_the_bot_is_chosen_on_the_settings_page_from_the_workstream_s_webhooks_and_keys(admin, app, world):
    path = f"/admin/workstreams/{world.workstream_id}"
    with app.app_context():
        hook = webhooks.create(world.workstream_id, {"url": "https://bot.example/hook", "events": ["message.created"]})
        deaf = webhooks.create(world.workstream_id, {"url": "https://crm.example/hook", "events": ["rating.given"]})
        key, _secret = api_keys.create({"name": "Shop bot", "workstream_ids": [world.workstream_id]})
        hook_id, deaf_id, key_id, prefix = hook.id, deaf.id, key.id, key.prefix
    page = admin.get(path).data.decode()
    assert f'<option value="{hook_id}">#{hook_id} https://bot.example/hook</option>' in page
    assert f'<option value="{key_id}">Shop bot (pcsk_{prefix})</option>' in page
    form = {
        "name": "Support",
        "auth_setting_id": str(world.auth_setting_id),
        "allowed_origins": "https://shop.example",
        "capacity_cost": "34",
        "allowed_presences": ["available"],
        "accept_seconds": "120",
        "wrap_up_mode": "always",
        "auto_close_open_seconds": "3600",
        "auto_close_waiting_seconds": "3600",
        "wrap_up_seconds": "60",
        "affinity": "1",
        "bot_webhook_id": str(deaf_id),
        "bot_api_key_id": str(key_id),
        "bot_name": "Botti",
        "bot_answer_seconds": "45",
    }
    refused = admin.post(path, data=form)
    assert refused.status_code == 400
    assert re.search(r'name="bot_webhook_id"[^>]*aria-invalid="true"', refused.data.decode())
    assert "must listen to message.created" in html.unescape(refused.data.decode())
    refused = admin.post(path, data={**form, "bot_webhook_id": str(hook_id), "bot_answer_seconds": "2"})
    assert refused.status_code == 400 and 'id="error-bot_answer_seconds"' in refused.data.decode()
    with app.app_context():
        assert bots.describe(db.session.get(Workstream, world.workstream_id)) is None

    saved = admin.post(path, data={**form, "bot_webhook_id": str(hook_id)})
    assert saved.status_code == 200
    page = saved.data.decode()
    assert f'<option value="{hook_id}" selected>' in page and 'value="Botti"' in page
    with app.app_context():
        assert bots.describe(db.session.get(Workstream, world.workstream_id)) == {
            "name": "Botti",
            "webhook_id": hook_id,
            "api_key_id": key_id,
            "answer_seconds": 45,
        }
    removed = admin.post(path, data={**form, "bot_webhook_id": "", "bot_api_key_id": "", "bot_name": ""})
    assert removed.status_code == 200
    with app.app_context():
        assert bots.describe(db.session.get(Workstream, world.workstream_id)) is None
