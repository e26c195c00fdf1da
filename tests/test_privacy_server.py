"""Erasure against the real server: the customer's open widgets are told and closed, through the event
hub (across processes, over Redis), and nobody else's."""

import json
import re
import secrets
import urllib.request

import pytest
import simple_websocket
from sqlalchemy import select

from app.agents import add_agent
from app.extensions import db
from app.models import Customer
from tests.support import (
    HOST_ORIGIN,
    TEST_REDIS_URL,
    ChatServer,
    console_cookie,
    database_url,
    migrated_app,
    needs_scale_out,
    seed,
    use_database,
)
from tests.test_sockets import TIMEOUT, widget


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("privacy")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN])
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
        db.engine.dispose()
    running = ChatServer(instance).start()
    running.world = world
    running.app = app
    yield running
    running.stop()


def admin_request(server, method: str, path: str):
    cookie = console_cookie(server.url, "root@example.com", "admin-password")
    page = urllib.request.urlopen(urllib.request.Request(server.url + "/console", headers={"Cookie": cookie}))
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode()).group(1)
    request = urllib.request.Request(server.url + path, method=method, headers={"Cookie": cookie, "X-CSRFToken": token})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_erasing_a_customer_closes_every_widget_of_theirs_and_no_one_else_s(server):
    phone, _, _ = widget(server, "alice")
    laptop, _, _ = widget(server, "alice")
    other, _, _ = widget(server, "bob")
    phone.send({"type": "send", "client_id": "c1", "body": "Please forget me"})
    assert phone.recv_until("ack")["seq"] == 1
    with server.app.app_context():
        alice_id = db.session.scalar(select(Customer.id).where(Customer.sub == "alice"))
        db.session.remove()

    erased = admin_request(server, "DELETE", f"/admin/api/customers/{alice_id}")
    assert erased["erased"]["conversations"] == 1

    for peer in (phone, laptop):
        assert peer.recv_until("erased") == {"type": "erased"}
        with pytest.raises(simple_websocket.ConnectionClosed):
            peer.ws.receive(timeout=TIMEOUT)
            peer.ws.receive(timeout=TIMEOUT)
        assert peer.ws.close_reason == 1008 and peer.ws.close_message == "erased"
    other.send({"type": "ping"})
    assert other.recv_until("pong") == {"type": "pong"}
    other.close()


@needs_scale_out
def test_an_erasure_on_one_process_closes_the_customer_s_widget_on_another(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    app = migrated_app(first)
    world = seed(app, [HOST_ORIGIN])
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
        db.engine.dispose()
    use_database(second, database_url(first))
    env = {"REDIS_URL": TEST_REDIS_URL, "SECRET_KEY": secrets.token_urlsafe(32)}
    a, b = ChatServer.start_together(ChatServer(first, env), ChatServer(second, env))
    a.world = b.world = world
    try:
        peer, _, _ = widget(b, "alice")
        peer.send({"type": "send", "client_id": "c1", "body": "Forget me"})
        assert peer.recv_until("ack")["seq"] == 1
        with app.app_context():
            alice_id = db.session.scalar(select(Customer.id).where(Customer.sub == "alice"))
            db.engine.dispose()
        admin_request(a, "DELETE", f"/admin/api/customers/{alice_id}")
        assert peer.recv_until("erased") == {"type": "erased"}
        with pytest.raises(simple_websocket.ConnectionClosed):
            peer.ws.receive(timeout=TIMEOUT)
            peer.ws.receive(timeout=TIMEOUT)
        assert peer.ws.close_reason == 1008
    finally:
        a.stop()
        b.stop()
