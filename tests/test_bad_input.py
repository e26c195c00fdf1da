"""Every bad input over HTTP is a 4xx with a JSON error and changes nothing: the cases found by fuzzing,
then Hypothesis generating bodies, query strings and path values for every route."""

import json
import re
import tempfile
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.agents import add_agent
from app.extensions import db
from tests.snapshot import dump
from tests.support import (
    HOST_ORIGIN,
    app_for,
    copy_instance,
    quick_password_hashes,
    rsa_key_pair,
)

ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "a long admin password"
# Modest and bounded: these run on every `make test`, on SQLite and again on PostgreSQL.
PROPERTY = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture(scope="module")
def template(template, tmp_path_factory):
    """The tests' database, made once for the module (hashing a password costs as much as many requests):
    the session's, with an admin and a conversation with a message, so that ids in paths can exist."""
    path = tmp_path_factory.mktemp("bad-input")
    copy_instance(template[0], path)
    app = app_for(path, TESTING=True, WTF_CSRF_ENABLED=False)
    with app.app_context(), quick_password_hashes():
        add_agent(ADMIN_EMAIL, "Root", "admin", ADMIN_PASSWORD)
        response = app.test_client().post(
            f"/api/widget/workstreams/{template[1].workstream_id}/messages",
            json={"client_id": "seed-1", "body": "Hello"},
            headers=widget_headers(template[1]),
        )
        assert response.status_code == 201
        db.engine.dispose()
    return path, template[1]


@pytest.fixture
def admin(client):
    """The admin signed in."""
    client.post("/console/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    return client


def widget_headers(world) -> dict:
    return {"Authorization": f"Bearer {world.token('alice')}", "Origin": HOST_ORIGIN}


def refused(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:500])
    if status is not None:
        assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["code"] and error["message"]
    return error


# The cases found by fuzzing ---------------------------------------------------------------------------

DEEP = "[" * 50_000 + "]" * 50_000


def test_huge_integers_in_cursors_and_path_ids_are_4xx(app, admin, world):
    before = dump(app)
    api = f"/api/widget/workstreams/{world.workstream_id}"
    for url in (
        "/console/api/conversations/99999999999999999999",
        "/console/api/conversations/9223372036854775808/messages",
        "/console/api/conversations/2147483648/take",
        "/console/api/conversations/1/messages?before=9223372036854775808",
        "/console/api/conversations/1/messages?after=2147483648",
        "/console/api/conversations/1/messages?limit=99999999999999999999",
        "/console/api/conversations/1/messages?after=1_0",
        "/console/api/conversations/1/messages?after=%D9%A1",
    ):
        method = admin.post if url.endswith("/take") else admin.get
        refused(method(url))
    for url in (
        f"{api}/conversations?before=9223372036854775808",
        f"{api}/conversations/9223372036854775808/messages",
        f"{api}/conversations/1/messages?after=2147483648",
    ):
        refused(admin.get(url, headers=widget_headers(world)))
    refused(admin.patch("/admin/api/agents/9223372036854775808", json={"name": "x"}))
    # Past int4 the id matches no route, also where the path has a route for another method: 404, not 405.
    for method, url in (
        ("POST", "/console/api/conversations/2147483648/notes"),
        ("DELETE", "/console/api/canned/2147483648"),
        ("PATCH", "/admin/api/webhooks/9999999999"),
        ("DELETE", "/admin/api/customers/2147483648"),
    ):
        assert refused(admin.open(url, method=method, json={}), 404)["code"] == "not_found"
    assert admin.get("/console/api/conversations/002147483647/notes").status_code == 404
    assert dump(app) == before


@pytest.mark.parametrize(
    "raw",
    [
        '{"client_id": "\\ud800", "body": "hi"}',
        '{"client_id": "c-9", "body": "\\udfff"}',
        '{"client_id": "c-9", "body": "a\\u0000b"}',
        '{"client_id": "c-9", "body": "hi", "locale": "\\ud800"}',
        '{"client_id": "c-9", "body": 1e999}',
        '{"client_id": "c-9", "body": NaN}',
        DEEP,
        '{"a":' * 40 + "1" + "}" * 40,
        "\xff\xfe not UTF-8",
        "",
    ],
)
def test_bad_json_to_the_widget_is_400_and_stores_nothing(app, admin, world, raw):
    before = dump(app)
    response = admin.post(
        f"/api/widget/workstreams/{world.workstream_id}/messages",
        data=raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw,
        content_type="application/json",
        headers=widget_headers(world),
    )
    refused(response, 400)
    assert dump(app) == before


def test_a_refused_body_does_not_create_the_customer(app, client, world):
    before = dump(app)
    response = client.post(
        f"/api/widget/workstreams/{world.workstream_id}/messages",
        data=DEEP,
        content_type="application/json",
        headers={"Authorization": f"Bearer {world.token('newcomer')}", "Origin": HOST_ORIGIN},
    )
    refused(response, 400)
    assert dump(app) == before


@pytest.mark.parametrize(
    "body",
    [
        {"allowed_presences": [[1]]},
        {"allowed_presences": [{"a": 1}]},
        {"allowed_origins": ["http://["]},
        {"allowed_origins": ["http://shop.example:99999"]},
        {"allowed_origins": ["https://x" * 1000]},
        {"wrap_up_capacity": 10**15},
        {"wrap_up_capacity": 2**31 - 1},
        {"capacity_cost": 2**40},
        {"name": "\ud800"},
        {"name": "Support\x00"},
        {"hours": json.loads("[" * 30 + "]" * 30)},
        {"automated_messages": {"position": {"texts": {"fi": "\x00"}}}},
    ],
)
def test_bad_workstream_settings_are_400_and_change_nothing(app, admin, world, body):
    before = dump(app)
    refused(admin.patch(f"/admin/api/workstreams/{world.workstream_id}", json=body), 400)
    refused(admin.post("/admin/api/workstreams", json={"name": "New", "mode": "live", **body}), 400)
    assert dump(app) == before


@pytest.mark.parametrize(
    "expires_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1-1-1", 20270131, "2027-01-31" * 20]
)
def test_bad_key_expiry_is_400(app, admin, world, expires_at):
    before = dump(app)
    _, public = rsa_key_pair()
    body = {"kid": "k-new", "public_key": public, "expires_at": expires_at}
    refused(admin.post(f"/admin/api/auth-settings/{world.auth_setting_id}/keys", json=body), 400)
    assert dump(app) == before


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Shop", "clock_skew_seconds": 10**15, "hs256_secret": "s" * 40},
        {"name": "Shop", "max_lifetime_seconds": 2**31 - 1, "hs256_secret": "s" * 40},
        {"name": "Shop", "keys": [{"kid": "k", "public_key": "-----BEGIN PUBLIC KEY-----\n\x01\x02"}]},
        {"name": "Shop", "keys": [[1]]},
    ],
)
def test_bad_auth_settings_are_400(app, admin, body):
    before = dump(app)
    refused(admin.post("/admin/api/auth-settings", json=body), 400)
    assert dump(app) == before


def test_nul_in_paths_queries_and_forms_is_400(app, admin, world):
    before = dump(app)
    refused(admin.get("/api/widget/workstreams/%00/conversations", headers=widget_headers(world)), 400)
    refused(admin.get("/console/api/conversations/1/messages?after=1&x=%00"), 400)
    refused(admin.delete(f"/admin/api/auth-settings/{world.auth_setting_id}/keys/k%00"), 400)
    refused(admin.post("/console/login", data={"email": "root@example.com\x00", "password": "x"}), 400)
    assert dump(app) == before


@pytest.mark.parametrize(
    "target",
    [
        "/console%0d%0aX:1",
        "/console\r\nSet-Cookie: a=b",
        "https://evil.example/console",
        "//evil.example/console",
        "/\\evil.example/console",
        "/console\\@evil.example",
        "javascript:alert(1)",
        "/admin/api/agents",
        "/consolex",
    ],
)
def test_login_next_never_breaks_the_redirect_nor_leaves_the_console(app, client, world, target):
    email, password = world.agents["ada"]
    response = client.post("/console/login", data={"email": email, "password": password, "next": target})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/console") and "\r" not in location and "\n" not in location
    assert not re.match(r"^/console[^/?]", location)
    # Signed in already, the GET form redirects by the same rule.
    again = client.get("/console/login", query_string={"next": target})
    assert again.status_code == 302 and again.headers["Location"] == location


def test_login_next_inside_the_console_is_kept(client, world):
    email, password = world.agents["ada"]
    response = client.post(
        "/console/login", data={"email": email, "password": password, "next": "/console/?x=1#conversation-3"}
    )
    assert response.headers["Location"] == "/console/?x=1"


# Hypothesis: every route, generated input --------------------------------------------------------------

FIELD_NAMES = [
    "client_id", "body", "locale", "presence", "agent_id", "name", "email", "role", "capacity", "max_items",
    "disabled", "password", "kid", "public_key", "expires_at", "mode", "distribution", "affinity",
    "hide_when_closed", "auth_setting_id", "allowed_origins", "allowed_presences", "wrap_up_capacity", "hours",
    "automated_messages", "capacity_cost", "accept_seconds", "fallback_offline_minutes",
    "auto_close_open_seconds", "auto_close_waiting_seconds", "wrap_up_seconds", "client_function", "issuer",
    "hs256_secret", "clock_skew_seconds", "max_lifetime_seconds", "keys", "conversation_id", "after", "seq",
]  # fmt: skip
NASTY_TEXT = st.sampled_from(
    ["\ud800", "a\udfffb", "\x00", "x\x00", "http://[", "0001-01-01T00:00:00+01:00", "-1", "", " ", "always"]
)
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([2**31, 2**31 - 1, 2**63, -(2**63) - 1, 10**15, 10**30, -1, 0]),
    st.floats(allow_nan=False),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20), NASTY_TEXT)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | NASTY_TEXT, inner, max_size=4),
    max_leaves=12,
)
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELD_NAMES), VALUES, max_size=6),
    VALUES,
)
RAW_BODIES = st.one_of(
    BODIES.map(json.dumps),
    st.sampled_from([DEEP, "[" * 1500, '{"body": "\\ud800"}', "{", "NaN", "1e999", '{"a": 1e999}', "\xff"]),
    st.integers(min_value=33, max_value=5000).map(lambda n: '{"a":' * n + "1" + "}" * n),
)
QUERY_VALUES = st.one_of(
    st.sampled_from(["9223372036854775808", "2147483648", "-1", "1e3", "%00", "", "1_0", "٣", "0x10"]),
    st.integers().map(str),
    st.text(max_size=10),
)
QUERIES = st.dictionaries(st.sampled_from(["before", "after", "limit", "next", "customer", "workstream"]), QUERY_VALUES)
PATH_INTS = st.one_of(
    st.integers(min_value=0, max_value=5),
    st.sampled_from([2**31 - 1, 2**31, 2**63, 10**30]),
)
PATH_TEXT = st.one_of(st.text(max_size=12), NASTY_TEXT.filter(lambda s: "\ud800" not in s and "\udfff" not in s))


# The unsubscribe page is opened from an email by a person (and by mail scanners): it answers in HTML.
HTML_FORMS = (
    "/console/login",
    "/console/password",
    "/console/profile",
    "/console/canned",
    "/console/canned/<int:item_id>",
    "/email/unsubscribe/<token>",
)


def html_form(rule: str) -> bool:
    """Pages that answer a person with the page again (the refusal beside its field), not JSON."""
    return rule in HTML_FORMS or (rule.startswith("/admin/") and not rule.startswith("/admin/api/"))


def routes(app) -> list[tuple[str, str]]:
    """(method, rule) for every route that takes input, websocket endpoints included (as plain HTTP)."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return found


def fill(rule: str, ints, texts) -> str:
    def value(match: re.Match) -> str:
        converter = match.group(1)
        return str(ints.pop()) if converter == "int" else quote(texts.pop(), safe="")

    return re.sub(r"<(?:(\w+):)?\w+>", value, rule)


def _route_ids(app_routes) -> list[str]:
    return [f"{method} {rule}" for method, rule in app_routes]


def _all_routes() -> list[tuple[str, str]]:
    # At collection time, so each route is its own test: an app on an in-memory database is enough.
    with tempfile.TemporaryDirectory() as folder:
        return routes(create_app({"INSTANCE_PATH": folder, "SQLALCHEMY_DATABASE_URI": "sqlite://"}))


ROUTES = _all_routes()


@pytest.mark.parametrize(("method", "rule"), ROUTES, ids=_route_ids(ROUTES))
def test_generated_bad_input_to_every_route_is_4xx_and_changes_nothing(app, admin, world, method, rule):
    headers = widget_headers(world)

    @PROPERTY
    @given(
        body=RAW_BODIES,
        query=QUERIES,
        ints=st.lists(PATH_INTS, min_size=3, max_size=3),
        texts=st.lists(PATH_TEXT, min_size=3, max_size=3),
        real_workstream=st.booleans(),
    )
    def check(body, query, ints, texts, real_workstream):
        if real_workstream:
            texts[-1] = world.workstream_id
        url = fill(rule, list(ints), list(texts))
        before = dump(app)
        response = admin.open(
            url,
            method=method,
            query_string=query,
            data=body.encode("utf-8", "surrogatepass"),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code < 500, (method, url, query, body[:200], response.data[:300])
        if response.status_code >= 400:
            # The sign-in and password pages answer a person with the page again; everything else in JSON.
            assert response.is_json or html_form(rule), (method, url, response.data[:300])
            assert dump(app) == before, (method, url, query, body[:200], response.json)

    check()


def test_a_huge_wrap_up_capacity_stored_before_the_maximum_still_counts_as_always():
    from datetime import datetime

    from app.capacity import holds_capacity
    from app.models import Workstream

    old = Workstream(wrap_up_capacity=str(10**15))
    now = datetime(2026, 12, 1, 12, 0)
    assert holds_capacity("wrap_up", old, now, now) is True
