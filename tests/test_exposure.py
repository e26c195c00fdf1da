"""What a real install exposes: security headers on every response, no demo site unless started in demo
mode, and instance files only its owner can read."""

import stat
import urllib.error
import urllib.request

import pytest

from tests.support import HOST_ORIGIN, ChatServer, app_for, migrated_app, seed

# Headers, routes and the modes of SQLite's own files.
pytestmark = pytest.mark.database_independent


def test_every_response_carries_the_security_headers(client, world):
    token = world.token("alice")
    for method, path, headers in (
        ("GET", "/widget.js", {}),
        ("GET", f"/api/widget/workstreams/{world.workstream_id}/conversations", {"Authorization": f"Bearer {token}"}),
        ("GET", f"/api/widget/workstreams/{world.workstream_id}/conversations", {}),
        ("POST", f"/api/widget/workstreams/{world.workstream_id}/messages", {"Origin": HOST_ORIGIN}),
        ("GET", "/console/login", {}),
        ("GET", "/console/", {}),
        ("GET", "/console/api/me", {}),
        ("GET", "/admin/api/agents", {}),
        ("GET", "/no/such/page", {}),
        ("GET", "/static/console.css", {}),
    ):
        response = client.open(path, method=method, headers=headers)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Frame-Options"] == "DENY", path


def test_the_widget_script_stays_loadable_from_any_site(client):
    response = client.get("/widget.js", headers={"Origin": "https://shop.example"})
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    # nosniff demands a JavaScript type, which it has.
    assert response.mimetype == "text/javascript"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("plain")
    app = migrated_app(instance)
    seed(app, [HOST_ORIGIN])
    with app.app_context():
        from app.demo import ensure

        ensure("http://127.0.0.1:5000", lambda _line: None)
    running = ChatServer(instance).start()
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/demo/", "/demo/?customer=alice", "/demo/token?customer=alice"])
def test_serve_has_no_demo_site_even_with_demo_data(plain_server, path):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(plain_server.url + path)
    assert refused.value.code == 404


def test_the_database_and_secrets_are_owner_only(tmp_path):
    instance = tmp_path / "fresh"
    app = migrated_app(instance)
    with app.app_context():
        from app.demo import ensure

        ensure("http://127.0.0.1:5000", lambda _line: None)
    for name in ("chat.db", "secret_key", "demo_signing_key.pem"):
        mode = stat.S_IMODE((instance / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(instance.stat().st_mode) & 0o077 == 0


def test_an_existing_readable_database_is_made_owner_only(tmp_path):
    instance = tmp_path / "old"
    instance.mkdir()
    (instance / "chat.db").touch(mode=0o644)
    (instance / "chat.db").chmod(0o644)
    app_for(instance)
    assert stat.S_IMODE((instance / "chat.db").stat().st_mode) == 0o600
