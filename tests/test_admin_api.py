"""The admin JSON API for authentication settings and keys."""

import pytest
from sqlalchemy import func, select

from app.agents import add_agent
from app.extensions import db
from app.models import AuthKey, AuthSetting
from tests.support import rsa_key_pair


@pytest.fixture
def admin(app, client):
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    return client


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(AuthSetting)),
            db.session.scalar(select(func.count()).select_from(AuthKey)),
        )


def test_create_a_setting_with_a_key_then_rotate(admin):
    _, first = rsa_key_pair()
    response = admin.post(
        "/admin/api/auth-settings",
        json={
            "name": "Shop",
            "client_function": "auth.getAuthenticationToken",
            "issuer": "https://shop.example",
            "keys": [{"kid": "2026-11", "public_key": first, "expires_at": "2027-06-30"}],
        },
    )
    assert response.status_code == 201, response.json
    setting = response.json["auth_setting"]
    assert setting["keys"][0]["algorithm"] == "RS256" and setting["keys"][0]["expires_at"].startswith("2027-06-30")
    assert setting["hs256"] is False

    _, second = rsa_key_pair()
    path = f"/admin/api/auth-settings/{setting['id']}/keys"
    assert admin.post(path, json={"kid": "2027-01", "public_key": second}).status_code == 201
    retired = admin.delete(f"{path}/2026-11").json["auth_setting"]["keys"]
    assert [(k["kid"], k["retired_at"] is not None) for k in retired] == [("2026-11", True), ("2027-01", False)]
    assert admin.delete(f"{path}/2026-11").status_code == 404


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"name": ""}, "invalid_setting"),
        ({"name": "X"}, "invalid_setting"),  # neither keys nor a secret
        ({"name": "X", "hs256_secret": "short"}, "invalid_setting"),
        ({"name": "X", "client_function": "alert(1)", "hs256_secret": "s" * 32}, "invalid_setting"),
        ({"name": "X", "clock_skew_seconds": "60", "hs256_secret": "s" * 32}, "invalid_setting"),
        ({"name": "X", "colour": "red", "hs256_secret": "s" * 32}, "invalid_setting"),
        ({"name": "X", "keys": [{"kid": "a", "public_key": "not a key"}]}, "invalid_key"),
        ({"name": "X", "keys": [{"kid": "a", "public_key": "PUBLIC_KEY", "expires_at": "soon"}]}, "invalid_key"),
        ({"name": "X", "keys": [{"kid": "a", "public_key": "PUBLIC_KEY"}, {"kid": "a", "public_key": "PUBLIC_KEY"}]},
         "duplicate_kid"),
        ({"name": "X", "keys": [{"kid": "", "public_key": "PUBLIC_KEY"}]}, "invalid_key"),
        ({"name": "X", "keys": "PUBLIC_KEY"}, "invalid_setting"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_and_nothing_is_created(admin, app, payload, code):
    _, public = rsa_key_pair()
    for key in payload.get("keys", []) if isinstance(payload.get("keys"), list) else []:
        key["public_key"] = key["public_key"].replace("PUBLIC_KEY", public)
    before = counts(app)
    response = admin.post("/admin/api/auth-settings", json=payload)
    assert response.status_code in (400, 409) and response.json["error"]["code"] == code
    assert counts(app) == before


def test_a_weak_rsa_key_is_refused(admin, world):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    pem = weak.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    response = admin.post(
        f"/admin/api/auth-settings/{world.auth_setting_id}/keys", json={"kid": "w", "public_key": pem}
    )
    assert response.status_code == 400 and "2048" in response.json["error"]["message"]


def test_only_admins_may_manage_settings(client, world):
    email, password = world.agents["ada"]
    client.post("/console/login", data={"email": email, "password": password})
    response = client.get("/admin/api/auth-settings")
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"


def test_signed_out_gets_401(client):
    response = client.get("/admin/api/auth-settings")
    assert response.status_code == 401 and response.json["error"]["code"] == "not_authenticated"


def test_workstreams_are_created_and_changed_with_validation(admin, world):
    created = admin.post(
        "/admin/api/workstreams",
        json={
            "name": "Shop chat",
            "auth_setting_id": world.auth_setting_id,
            "allowed_origins": ["https://shop.example"],
            "hours": {"timezone": "Europe/Helsinki", "weekly": {"mon": [["08:00", "16:00"]]}, "holidays": []},
            "fallback_offline_minutes": 30,
        },
    )
    assert created.status_code == 201, created.json
    workstream = created.json["workstream"]
    assert (workstream["mode"], workstream["affinity"], workstream["auto_close_open_seconds"]) == (
        "persistent",
        True,
        30 * 24 * 3600,
    )
    assert f'data-workstream="{workstream["id"]}"' in created.json["embed"]
    path = f"/admin/api/workstreams/{workstream['id']}"
    refused = admin.patch(path, json={"affinity": False})
    assert refused.status_code == 400 and "affinity" in refused.json["error"]["message"]
    assert admin.patch(path, json={"distribution": "pick"}).status_code == 400
    changed = admin.patch(path, json={"capacity_cost": 50, "wrap_up_capacity": 600}).json["workstream"]
    assert (changed["capacity_cost"], changed["wrap_up_capacity"], changed["affinity"]) == (50, 600, True)

    live = admin.post("/admin/api/workstreams", json={"name": "Live", "mode": "live"}).json["workstream"]
    assert (live["auto_close_open_seconds"], live["wrap_up_seconds"]) == (20 * 60, 15 * 60)
    listed = admin.get("/admin/api/workstreams").json["workstreams"]
    assert {w["name"] for w in listed} >= {"Shop chat", "Live"}


def test_automated_messages_are_set_per_workstream_and_bad_ones_refused(admin):
    live = admin.post("/admin/api/workstreams", json={"name": "Live", "mode": "live"}).json["workstream"]
    path = f"/admin/api/workstreams/{live['id']}"
    setting = {"position": {"texts": {"fi": "Olet {Position}."}}, "wait_time": {"enabled": False}}
    changed = admin.patch(path, json={"automated_messages": setting})
    assert changed.status_code == 200 and changed.json["workstream"]["automated_messages"] == setting
    refused = admin.patch(path, json={"automated_messages": {"position": {"enabled": 1}}, "name": "X"})
    assert refused.status_code == 400 and refused.json["error"]["code"] == "invalid_workstream"
    assert admin.get("/admin/api/workstreams").json["workstreams"][-1]["automated_messages"] == setting
