"""Admission and rate limits against a real server (gunicorn, gevent worker): the hello deadline, the
socket caps, message, frame, typing, visitor-token and sign-in limits, and a request body that stalls.

The server trusts one proxy (TRUSTED_PROXIES=1), so each test speaks from its own client address through
X-Forwarded-For and the per-address limits of one test do not reach another."""

import base64
import json
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPConnection
from http.cookiejar import CookieJar

import pytest
import simple_websocket
from sqlalchemy import func, select, update

from app import workstreams
from app.extensions import db
from app.models import Agent, Message
from tests.support import (
    HOST_ORIGIN,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    ChatServer,
    RedisServer,
    app_for,
    copy_instance,
    database_url,
    drop_database,
    migrated_app,
    seed,
)
from tests.test_sockets import Peer

LIMITS = {
    "TRUSTED_PROXIES": "1",
    "HELLO_TIMEOUT_SECONDS": "1.5",
    "SOCKETS_BEFORE_HELLO": "5",
    "HANDSHAKES_IN_LINE": "1",
    "SOCKETS_BEFORE_HELLO_PER_ADDRESS": "2",
    "SOCKETS_PER_ADDRESS": "3",
    "SOCKETS_PER_CUSTOMER": "2",
    "HANDSHAKES_PER_ADDRESS": "8/minute",
    "MESSAGES_PER_CUSTOMER": "3/minute",
    "FRAMES_PER_SOCKET": "20/minute",
    "REFUSALS_PER_SOCKET": "3/minute",
    "TYPING_PER_CUSTOMER": "1 per 4 seconds",
    "VISITOR_TOKENS_PER_ADDRESS": "2/minute",
    "LOGIN_FAILURES_PER_ACCOUNT": "3 per 15 seconds",
    "LOGIN_FAILURES_PER_ADDRESS": "5/minute",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("limits")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada", "bo": "Bo", "cy": "Cy"})
    with app.app_context():
        db.session.execute(update(Agent).values(capacity=10_000))
        db.session.commit()
        live_id = workstreams.create(
            {"name": "Live", "mode": "live", "allowed_origins": [HOST_ORIGIN], "auth_setting_id": world.auth_setting_id}
        ).id
    running = ChatServer(instance, LIMITS).start()
    running.world, running.app, running.live_id = world, app, live_id
    yield running
    running.stop()


def address() -> str:
    return f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def ws_url(server) -> str:
    return server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"


def open_socket(server, client_address: str) -> Peer:
    return Peer(ws_url(server), headers={"X-Forwarded-For": client_address})


def say_hello(peer: Peer, server, sub: str) -> dict:
    peer.send({"type": "hello", "token": server.world.token(sub)})
    return peer.recv()


def hello(server, client_address: str, sub: str) -> Peer:
    peer = open_socket(server, client_address)
    welcome = say_hello(peer, server, sub)
    assert welcome["type"] == "welcome", welcome
    assert peer.recv()["type"] == "backlog"
    return peer


def closed_with(peer: Peer, timeout: float = 5) -> tuple[int, str]:
    """The close code and reason once the server closes the socket (frames before it are skipped)."""
    deadline = time.monotonic() + timeout
    with pytest.raises(simple_websocket.ConnectionClosed):
        while time.monotonic() < deadline:
            peer.ws.receive(timeout=deadline - time.monotonic())
        pytest.fail("the server did not close the socket")
    return peer.ws.close_reason, peer.ws.close_message


def _handshake(server, client_address: str) -> tuple[HTTPConnection, object]:
    connection = HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "GET",
        ws_url(server).removeprefix(server.url.replace("http", "ws")),
        headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode(),
            "Sec-WebSocket-Version": "13",
            "Origin": HOST_ORIGIN,
            "X-Forwarded-For": client_address,
        },
    )
    return connection, connection.getresponse()


def refused_handshake(server, client_address: str) -> tuple[int, str]:
    """The status and error code of a websocket handshake the server refuses before upgrading."""
    connection, response = _handshake(server, client_address)
    try:
        assert response.status != 101, "the handshake was accepted"
        return response.status, json.loads(response.read())["error"]["code"]
    finally:
        connection.close()


def answered_handshake(server, client_address: str) -> tuple[int, float]:
    """The status a websocket handshake is answered with (101: upgraded), and after how many seconds."""
    started = time.monotonic()
    connection, response = _handshake(server, client_address)
    connection.close()
    return response.status, time.monotonic() - started


def widget_script_seconds(server) -> float:
    started = time.monotonic()
    urllib.request.urlopen(server.url + "/widget.js", timeout=5).close()
    return time.monotonic() - started


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


def http(server, method: str, path: str, payload=None, headers: dict | None = None):
    """(status, headers, JSON body) of a request to the server."""
    request = urllib.request.Request(
        server.url + path,
        data=None if payload is None else json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Origin": HOST_ORIGIN, **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def stored_messages(server, sub: str) -> list[str]:
    with server.app.app_context():
        return list(
            db.session.scalars(
                select(Message.body)
                .where(Message.sender_kind == "customer", Message.client_id.like(f"{sub}-%"))
                .order_by(Message.id)
            )
        )


# Admission ---------------------------------------------------------------------------------------------


def test_a_socket_that_does_not_say_hello_is_closed_with_1008_even_while_it_pings(server):
    peer = open_socket(server, address())
    started = time.monotonic()
    peer.send({"type": "ping"})
    assert peer.recv() == {"type": "pong"}
    assert closed_with(peer, timeout=8) == (1008, "hello_timeout")
    assert 1.4 < time.monotonic() - started < 6


def test_handshakes_per_address_are_limited_before_the_upgrade(server):
    client_address = address()
    for i in range(8):
        peer = open_socket(server, client_address)
        # Said hello (or refused it and closed): none of them is left waiting for its hello.
        if say_hello(peer, server, f"knock-{i}")["type"] == "error":
            closed_with(peer)
    assert refused_handshake(server, client_address) == (429, "rate_limited")
    open_socket(server, address()).close()


def test_sockets_waiting_for_hello_are_capped_per_address(server):
    client_address = address()
    waiting = [open_socket(server, client_address) for _ in range(2)]
    assert refused_handshake(server, client_address) == (429, "too_many_connections")
    hello(server, address(), "next-door").close()
    for peer in waiting:
        assert closed_with(peer) == (1008, "hello_timeout")


def test_sockets_waiting_for_hello_are_capped_so_http_keeps_answering(server):
    idle = [open_socket(server, address()) for _ in range(5)]
    # The quota is full. Of two more handshakes, one waits in the line (which holds one) until the
    # deadline closes an idle socket, and the other is refused without waiting.
    answers: list[tuple[int, float]] = []
    both = [threading.Thread(target=lambda: answers.append(answered_handshake(server, address()))) for _ in "ab"]
    for handshake in both:
        handshake.start()
    assert widget_script_seconds(server) < 1
    for peer in idle:
        assert closed_with(peer)[0] == 1008
    for handshake in both:
        handshake.join(10)
    (refused, refused_after), (upgraded, upgraded_after) = sorted(answers, key=lambda answer: answer[0] == 101)
    assert (refused, upgraded) == (503, 101) and refused_after < upgraded_after
    # Their places are free again once the deadline has closed them.
    wait_for(lambda: hello(server, address(), "after-idle"))


def test_signed_in_sockets_are_capped_per_address(server):
    client_address = address()
    open_peers = [hello(server, client_address, f"neighbour-{i}") for i in range(3)]
    extra = open_socket(server, client_address)
    refusal = say_hello(extra, server, "neighbour-3")
    assert refusal["type"] == "error" and refusal["code"] == "too_many_connections"
    assert closed_with(extra) == (1008, "too_many_connections")
    open_peers.pop().close()

    def another_fits() -> bool:
        peer = open_socket(server, client_address)
        if say_hello(peer, server, "neighbour-3")["type"] == "welcome":
            return True
        peer.close()
        return False

    wait_for(another_fits)


def test_sockets_are_capped_per_customer(server):
    tabs = [hello(server, address(), "many-tabs") for _ in range(2)]
    third = open_socket(server, address())
    refusal = say_hello(third, server, "many-tabs")
    assert refusal["code"] == "too_many_connections"
    assert closed_with(third) == (1008, "too_many_connections")
    hello(server, address(), "someone-else").close()
    for tab in tabs:
        tab.close()


# Rates -------------------------------------------------------------------------------------------------


def test_messages_past_the_rate_are_refused_with_retry_after_stored_nowhere_over_socket_and_http(server):
    peer = hello(server, address(), "chatty")
    for i in range(3):
        peer.send({"type": "send", "client_id": f"chatty-{i}", "body": f"message {i}"})
        assert peer.recv_until("ack")["client_id"] == f"chatty-{i}"
    peer.send({"type": "send", "client_id": "chatty-3", "body": "one too many"})
    refusal = peer.recv_until("error")
    assert refusal["code"] == "rate_limited" and refusal["client_id"] == "chatty-3"
    assert isinstance(refusal["retry_after"], int | float) and 0 < refusal["retry_after"] <= 60
    # The socket stays open.
    peer.send({"type": "ping"})
    assert peer.recv_until("pong")

    # HTTP shares the customer's count.
    status, headers, body = http(
        server,
        "POST",
        f"/api/widget/workstreams/{server.world.workstream_id}/messages",
        {"client_id": "chatty-4", "body": "over http"},
        {"Authorization": f"Bearer {server.world.token('chatty')}"},
    )
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert 0 < body["error"]["retry_after"] <= 60 and 1 <= int(headers["Retry-After"]) <= 60
    assert stored_messages(server, "chatty") == ["message 0", "message 1", "message 2"]
    peer.close()


def test_a_socket_past_its_frame_rate_is_refused_then_closed_when_it_keeps_going(server):
    peer = hello(server, address(), "flooder")  # the hello is frame 1 of 20
    for _ in range(19):
        peer.send({"type": "ping"})
        assert peer.recv() == {"type": "pong"}
    for _ in range(3):
        peer.send({"type": "ping"})
        refusal = peer.recv()
        assert refusal["code"] == "rate_limited" and refusal["retry_after"] > 0
    peer.send({"type": "ping"})
    last = peer.recv()
    assert last["code"] == "rate_limited"
    assert closed_with(peer) == (1008, "rate_limited")


def test_typing_is_relayed_at_most_once_per_interval_per_customer(server):
    # The interval is 4 s here (2 s by default): long enough to see on a loaded machine.
    cookie = console_session(server, "ada")[1]
    console = Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})
    tab, other_tab = hello(server, address(), "typist"), hello(server, address(), "typist")
    tab.send({"type": "send", "client_id": "typist-0", "body": "hello"})
    tab.recv_until("ack")
    console.recv_until("notify")

    started = time.monotonic()
    for peer in (tab, other_tab, tab, other_tab, tab):
        peer.send({"type": "typing"})
    assert console.recv_until("typing")["sender"] == "customer"
    assert console.silent(1.5)
    assert time.monotonic() - started < 4, "too slow to show the coalescing"

    def relayed_again() -> bool:
        tab.send({"type": "typing"})
        return not console.silent(0.3)

    wait_for(relayed_again, timeout=10)
    assert time.monotonic() - started >= 3.9
    for peer in (console, tab, other_tab):
        peer.close()


def test_visitor_tokens_are_limited_per_client_address(server):
    path = f"/api/widget/workstreams/{server.live_id}/visitors"
    client_address = address()
    for _ in range(2):
        assert http(server, "POST", path, {}, {"X-Forwarded-For": client_address})[0] == 201
    status, headers, body = http(server, "POST", path, {}, {"X-Forwarded-For": client_address})
    assert status == 429 and body["error"]["code"] == "rate_limited" and body["error"]["retry_after"] > 0
    assert int(headers["Retry-After"]) >= 1
    assert http(server, "POST", path, {}, {"X-Forwarded-For": address()})[0] == 201


# Sign-in -----------------------------------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def sign_in(server, email: str, password: str, client_address: str) -> int:
    """The status of one sign-in as the login form posts it (302 is signed in)."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    page = opener.open(server.url + "/console/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
    request = urllib.request.Request(
        server.url + "/console/login", data=form, headers={"X-Forwarded-For": client_address}
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_right_password_waits_out_the_window_after_repeated_failures_on_the_account(server):
    email, password = server.world.agents["bo"]
    first_failure = time.monotonic()
    for _ in range(3):
        assert sign_in(server, email, "wrong password", address()) == 401
    # Other addresses, the right password: still refused while the account's window is full.
    assert time.monotonic() - first_failure < 15, "the machine was too slow to see the window"
    assert sign_in(server, email, password, address()) == 429
    assert sign_in(server, *server.world.agents["cy"], address()) == 302

    wait_for(lambda: sign_in(server, email, password, address()) == 302, timeout=30)
    assert time.monotonic() - first_failure >= 14.9


def test_failed_sign_ins_are_limited_per_address(server):
    client_address = address()
    for i in range(5):
        assert sign_in(server, f"nobody{i}@example.com", "guess", client_address) == 401
    assert sign_in(server, "nobody-else@example.com", "guess", client_address) == 429
    assert sign_in(server, *server.world.agents["ada"], address()) == 302


# No lock across the network ----------------------------------------------------------------------------


def console_session(server, key: str) -> tuple[str, str]:
    """(CSRF token, Cookie header) of an agent signed in to the console."""
    email, password = server.world.agents[key]
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(server.url + "/console/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
    page = opener.open(server.url + "/console/login", data=data).read().decode()
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return csrf, "; ".join(f"{c.name}={c.value}" for c in jar)


def test_a_console_post_whose_body_stalls_holds_up_no_customer(server):
    csrf, cookie = console_session(server, "ada")
    body = json.dumps({"presence": "available"}).encode()
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        stalled.sendall(
            b"POST /console/api/presence HTTP/1.1\r\n"
            + f"Host: 127.0.0.1:{server.port}\r\nCookie: {cookie}\r\nX-CSRFToken: {csrf}\r\n".encode()
            + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        time.sleep(0.2)  # let the server start on it: the stall is the point of the test
        started = time.monotonic()
        status, _, sent = http(
            server,
            "POST",
            f"/api/widget/workstreams/{server.world.workstream_id}/messages",
            {"client_id": "patient-0", "body": "still stored"},
            {"Authorization": f"Bearer {server.world.token('patient')}"},
        )
        assert status == 201 and sent["message"]["body"] == "still stored"
        assert time.monotonic() - started < 1
        assert widget_script_seconds(server) < 1

        stalled.sendall(body[5:])
        assert stalled.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        stalled.close()


# In-process: new conversations, and whose address counts -------------------------------------------------


@pytest.fixture
def live(app, world):
    with app.app_context():
        return workstreams.create(
            {"name": "Live", "mode": "live", "allowed_origins": [HOST_ORIGIN], "auth_setting_id": world.auth_setting_id}
        ).id


def test_new_conversations_per_customer_are_limited_and_a_refused_one_stores_nothing(app, client, live):
    app.config["CONVERSATIONS_PER_CUSTOMER"] = "2/hour"
    api = f"/api/widget/workstreams/{live}"
    token = client.post(f"{api}/visitors", headers={"Origin": HOST_ORIGIN}).json["token"]
    headers = {"Authorization": f"Bearer {token}", "Origin": HOST_ORIGIN}
    for i in range(2):
        sent = client.post(f"{api}/messages", json={"client_id": f"n{i}", "body": "hi"}, headers=headers)
        assert sent.status_code == 201
        conversation_id = sent.json["message"]["conversation_id"]
        assert client.post(f"{api}/conversations/{conversation_id}/end", headers=headers).status_code == 200
    refused = client.post(f"{api}/messages", json={"client_id": "n2", "body": "again"}, headers=headers)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert refused.json["error"]["retry_after"] > 0 and int(refused.headers["Retry-After"]) >= 1
    listed = client.get(f"{api}/conversations", headers=headers).json["conversations"]
    assert len(listed) == 2
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message).where(Message.client_id == "n2")) == 0


def test_the_widget_api_answers_an_address_only_so_often_but_the_script_always(app, client, world):
    app.config["WIDGET_REQUESTS_PER_ADDRESS"] = "3/minute"
    headers = {"Authorization": f"Bearer {world.token('looping')}", "Origin": HOST_ORIGIN}
    path = f"/api/widget/workstreams/{world.workstream_id}/conversations"
    for _ in range(3):
        assert client.get(path, headers=headers).status_code == 200
    refused = client.get(path, headers=headers)
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert client.get("/widget.js").status_code == 200
    elsewhere = client.get(path, headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert elsewhere.status_code == 200


@pytest.mark.parametrize("trusted_proxies", [0, 1])
def test_limits_key_on_the_address_the_trusted_proxies_report(tmp_path, template, trusted_proxies):
    instance = tmp_path / "instance"
    copy_instance(template[0], instance)
    app = app_for(instance, TESTING=True, TRUSTED_PROXIES=trusted_proxies, VISITOR_TOKENS_PER_ADDRESS="1/hour")
    with app.app_context():
        live_id = workstreams.create(
            {
                "name": "Live",
                "mode": "live",
                "allowed_origins": [HOST_ORIGIN],
                "auth_setting_id": template[1].auth_setting_id,
            }
        ).id
    client = app.test_client()

    def visitor_from(forwarded_for: str) -> int:
        headers = {"Origin": HOST_ORIGIN, "X-Forwarded-For": forwarded_for}
        return client.post(f"/api/widget/workstreams/{live_id}/visitors", headers=headers).status_code

    assert visitor_from("203.0.113.1") == 201
    # Without a trusted proxy the header is anyone's to write: the limit stays on the peer's address.
    assert visitor_from("203.0.113.2") == (201 if trusted_proxies else 429)
    assert visitor_from("203.0.113.2") == 429
    with app.app_context():
        db.engine.dispose()
    if TEST_DATABASE_URL:
        drop_database(database_url(instance))


# Shared across processes -------------------------------------------------------------------------------


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs Redis: set TEST_REDIS_URL (make test does when it answers)")
def test_two_processes_share_the_counts_through_redis(tmp_path_factory):
    instance = tmp_path_factory.mktemp("shared-limits")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        db.engine.dispose()
    env = {
        **LIMITS,
        "REDIS_URL": TEST_REDIS_URL,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "HANDSHAKES_PER_ADDRESS": "4/minute",
        "SOCKETS_BEFORE_HELLO_PER_ADDRESS": "10",
        "LOGIN_FAILURES_PER_ACCOUNT": "2/minute",
    }
    # One database and one Redis, two processes: a deployment behind a load balancer.
    a, b = ChatServer.start_together(ChatServer(instance, env), ChatServer(instance, env))
    a.world = b.world = world
    try:
        messages = f"/api/widget/workstreams/{world.workstream_id}/messages"
        auth = {"Authorization": f"Bearer {world.token('everywhere')}"}
        for server, client_id in ((a, "everywhere-0"), (b, "everywhere-1"), (a, "everywhere-2")):
            assert http(server, "POST", messages, {"client_id": client_id, "body": "hi"}, auth)[0] == 201
        status, _, body = http(b, "POST", messages, {"client_id": "everywhere-3", "body": "one more"}, auth)
        assert status == 429 and body["error"]["retry_after"] > 0

        client_address = address()
        for server in (a, b, a, b):
            open_socket(server, client_address).close()
        assert refused_handshake(a, client_address) == (429, "rate_limited")

        email, password = world.agents["ada"]
        assert sign_in(a, email, "wrong", address()) == 401
        assert sign_in(b, email, "wrong", address()) == 401
        assert sign_in(a, email, password, address()) == 429
    finally:
        a.stop()
        b.stop()


def test_while_redis_is_down_each_process_keeps_counting(tmp_path):
    redis_server = RedisServer(tmp_path).start()
    instance = tmp_path / "instance"
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {})
    with app.app_context():
        db.engine.dispose()
    env = {**LIMITS, "REDIS_URL": redis_server.url, "REDIS_CHANNEL_PREFIX": f"limits-{secrets.token_hex(4)}:"}
    server = ChatServer(instance, env).start()
    server.world, server.app = world, app
    try:
        messages = f"/api/widget/workstreams/{world.workstream_id}/messages"
        auth = {"Authorization": f"Bearer {world.token('outage')}"}

        def send(i: int) -> tuple[int, float]:
            started = time.monotonic()
            status = http(server, "POST", messages, {"client_id": f"outage-{i}", "body": "hi"}, auth)[0]
            return status, time.monotonic() - started

        assert send(0)[0] == 201
        redis_server.stop()
        # The count starts again in the process, still limited, and nobody waits on the dead Redis.
        for i in range(1, 4):
            status, seconds = send(i)
            assert status == 201 and seconds < 1
        assert send(4)[0] == 429
        assert stored_messages(server, "outage") == ["hi"] * 4
    finally:
        server.stop()
        redis_server.stop()
