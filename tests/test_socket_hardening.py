"""Websockets against a real server: bad frames are error frames that change nothing (the fuzzing cases,
then Hypothesis for every frame type), and sockets end when what they authenticated with does: a retired
key for the widget, a disabled agent, a password change or a sign-out for the console."""

import json
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import jwt
import pytest
import simple_websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from app.extensions import db
from app.models import Agent
from tests.snapshot import dump
from tests.support import HOST_ORIGIN, ChatServer, app_for, console_cookie, migrated_app, rsa_key_pair, seed
from tests.test_sockets import TIMEOUT, Peer, connect

ROOT_EMAIL, ROOT_PASSWORD = "root@example.com", "root password, long enough"
FRAMES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("hardening")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada", "bo": "Bo"})
    from app.agents import add_agent

    with app.app_context():
        add_agent(ROOT_EMAIL, "Root", "admin", ROOT_PASSWORD)
        db.session.execute(update(Agent).values(capacity=10_000))
        db.session.commit()
        db.engine.dispose()
    # Generated frames come faster than any person types: the limits are tested elsewhere, not here.
    unlimited = {
        "FRAMES_PER_SOCKET": "100000/minute",
        "MESSAGES_PER_CUSTOMER": "100000/minute",
        "CONVERSATIONS_PER_CUSTOMER": "100000/minute",
        "REFUSALS_PER_SOCKET": "100000/minute",
    }
    running = ChatServer(instance, unlimited).start()
    running.world = world
    running.app = app_for(instance)
    yield running
    running.stop()
    with running.app.app_context():
        db.engine.dispose()


def widget_url(server) -> str:
    return server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"


def hello(server, sub: str, token: str | None = None) -> Peer:
    peer = Peer(widget_url(server))
    peer.send({"type": "hello", "token": token or server.world.token(sub)})
    assert peer.recv()["type"] == "welcome"
    assert peer.recv_until("backlog")
    return peer


def replies_until_pong(peer: Peer) -> list[dict]:
    """Everything the server answers before the pong to a ping sent now."""
    peer.send({"type": "ping"})
    frames = []
    while True:
        frame = peer.recv()
        if frame["type"] == "pong":
            return frames
        frames.append(frame)


def closed(peer: Peer) -> bool:
    try:
        for _ in range(20):
            if peer.ws.receive(timeout=TIMEOUT) is None:
                return False
    except simple_websocket.ConnectionClosed:
        return True
    return False


def http(server, method: str, path: str, cookie: str, body: dict | None = None) -> tuple[int, dict]:
    page = urllib.request.Request(server.url + "/console/", headers={"Cookie": cookie})
    token = urllib.request.urlopen(page).read().decode().split('name="csrf-token" content="')[1].split('"')[0]
    request = urllib.request.Request(
        server.url + path,
        method=method,
        data=json.dumps(body or {}).encode(),
        headers={"Cookie": cookie, "Content-Type": "application/json", "X-CSRFToken": token},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# Bad frames --------------------------------------------------------------------------------------------

DEEP = "[" * 30_000 + "]" * 30_000  # under the 64 KiB frame cap, far over any decoder's nesting limit


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ('{"type": "send", "client_id": "\\ud800", "body": "hi"}', "invalid_request"),
        ('{"type": "send", "client_id": "c-1", "body": "\\udfff"}', "invalid_request"),
        ('{"type": "send", "client_id": "c-1", "body": "a\\u0000b"}', "invalid_request"),
        ('{"type": "send", "client_id": "c\\u0000", "body": "hi"}', "invalid_request"),
        ('{"type": "locale", "locale": "\\ud800"}', "invalid_request"),
        ('{"type": "end", "conversation_id": 9223372036854775808}', "invalid_request"),
        ('{"type": "read", "conversation_id": 2147483648, "seq": 1}', "invalid_request"),
        ('{"type": "read", "conversation_id": 1, "seq": 1e999}', "invalid_request"),
        ('{"type": "send", "client_id": "c-1", "body": NaN}', "invalid_request"),
        (DEEP, "invalid_json"),
        ("[" * 50_000, "invalid_json"),
        ('{"type": "send", "client_id": "c-1", "body": ' + "[" * 40 + "]" * 40 + "}", "invalid_json"),
    ],
)
def test_bad_widget_frames_are_error_frames_that_change_nothing(server, raw, code):
    peer = hello(server, "frames")
    before = dump(server.app)
    peer.send(raw)
    assert [(f["type"], f["code"]) for f in replies_until_pong(peer)] == [("error", code)]
    assert dump(server.app) == before
    peer.close()


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "hello", "token": "\\ud800"}',
        '{"type": "hello", "token": "x", "conversation_id": 9223372036854775808, "after": 1}',
        '{"type": "hello", "token": "x", "locale": "a\\u0000"}',
        DEEP,
    ],
)
def test_bad_hellos_are_error_frames_and_create_nothing(server, raw):
    before = dump(server.app)
    peer = Peer(widget_url(server))
    peer.send(raw)
    replies = replies_until_pong(peer)
    assert [f["type"] for f in replies] == ["error"] and replies[0]["code"] in ("invalid_request", "invalid_json")
    assert dump(server.app) == before
    peer.close()


def test_a_hello_with_huge_cursors_is_still_welcomed_from_scratch(server):
    peer = Peer(widget_url(server))
    peer.send(
        {"type": "hello", "token": server.world.token("cursor"), "conversation_id": 2**31 - 1, "after": 2**31 - 1}
    )
    assert peer.recv()["type"] == "welcome"
    assert peer.recv_until("backlog")["reset"] is True
    peer.close()


def test_bad_console_frames_are_error_frames(server):
    cookie = console_cookie(server.url, ROOT_EMAIL, ROOT_PASSWORD)
    peer = Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})
    assert [f["type"] for f in replies_until_pong(peer)] == ["snapshot"]
    before = dump(server.app)
    for raw, code in (
        ('{"type": "watch", "conversation_id": 9223372036854775808}', "invalid_request"),
        ('{"type": "watch", "conversation_id": 2147483648}', "invalid_request"),
        ('{"type": "typing", "conversation_id": 1e999}', "invalid_request"),
        ('{"type": "typing\\ud800"}', "invalid_request"),
        (DEEP, "invalid_json"),
    ):
        peer.send(raw)
        assert [(f["type"], f["code"]) for f in replies_until_pong(peer)] == [("error", code)], raw
    assert dump(server.app) == before
    peer.close()


NASTY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**31, 2**63, -1, 0, 10**30, "\ud800", "a\x00", "", "x" * 5000, [], {}, [[1]], {"a": {}}]),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
WIDGET_TYPES = ["send", "end", "typing", "read", "locale", "ping", "hello", "dance", ""]
CONSOLE_TYPES = ["watch", "typing", "ping", "dance", "send"]
FIELDS = ["client_id", "body", "conversation_id", "seq", "locale", "after", "token"]


def frames(types: list[str]):
    return st.builds(
        lambda kind, extra: json.dumps({"type": kind, **extra}),
        st.sampled_from(types),
        st.dictionaries(st.sampled_from(FIELDS), NASTY, max_size=4),
    )


def test_generated_widget_frames_are_answered_and_refusals_change_nothing(server):
    peer = hello(server, "generated")

    @FRAMES
    @given(raw=frames(WIDGET_TYPES))
    def check(raw):
        before = dump(server.app)
        peer.send(raw)
        replies = replies_until_pong(peer)
        assert all(f["type"] in ("error", "ack", "hours", "message", "conversation", "read") for f in replies), replies
        if any(f["type"] == "error" for f in replies):
            assert dump(server.app) == before, (raw, replies)

    check()
    peer.close()


def test_generated_console_frames_are_answered_and_refusals_change_nothing(server):
    cookie = console_cookie(server.url, ROOT_EMAIL, ROOT_PASSWORD)
    peer = Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})

    @FRAMES
    @given(raw=frames(CONSOLE_TYPES))
    def check(raw):
        before = dump(server.app)
        peer.send(raw)
        replies = replies_until_pong(peer)
        assert all(f["type"] != "error" or f["code"] for f in replies), replies
        if any(f["type"] == "error" for f in replies):
            assert dump(server.app) == before, (raw, replies)

    check()
    peer.close()


# Sockets that end ---------------------------------------------------------------------------------------


def test_retiring_a_key_ends_the_sockets_it_authenticated_and_they_are_refused_after(server):
    root = console_cookie(server.url, ROOT_EMAIL, ROOT_PASSWORD)
    setting = server.world.auth_setting_id
    private, public = rsa_key_pair()
    status, _ = http(
        server, "POST", f"/admin/api/auth-settings/{setting}/keys", root, {"kid": "k2", "public_key": public}
    )
    assert status == 201

    def token(sub: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": sub, "iat": now, "exp": now + 600}, private, algorithm="RS256", headers={"kid": "k2"})

    on_retired_key = hello(server, "rotating", token=token("rotating"))
    on_other_key = hello(server, "staying")
    on_secret = hello(server, "secretive", token=server.world.token("secretive", alg="HS256"))

    assert http(server, "DELETE", f"/admin/api/auth-settings/{setting}/keys/k2", root)[0] == 200
    frame = on_retired_key.recv()
    assert (frame["type"], frame["code"]) == ("error", "token_key_retired")
    assert closed(on_retired_key)
    assert on_retired_key.ws.close_reason == 1008
    again = Peer(widget_url(server))
    again.send({"type": "hello", "token": token("rotating")})
    assert again.recv()["code"] == "token_unknown_kid"
    # Sockets that authenticated otherwise carry on.
    assert replies_until_pong(on_other_key) == [] and replies_until_pong(on_secret) == []
    on_other_key.close()
    on_secret.close()


@pytest.mark.parametrize("how", ["disable", "reset", "sign_out"])
def test_the_console_socket_ends_with_the_agents_sessions(server, how):
    from app.agents import add_agent

    email, password = f"{how}@example.com", "a password for this test"
    with server.app.app_context():
        agent, _ = add_agent(email, how.title(), "agent", password)
        agent_id = agent.id
    cookie = console_cookie(server.url, email, password)
    url = server.url.replace("http", "ws") + "/console/ws"
    peer = Peer(url, origin=server.url, headers={"Cookie": cookie})
    replies_until_pong(peer)
    root = console_cookie(server.url, ROOT_EMAIL, ROOT_PASSWORD)
    if how == "disable":
        assert http(server, "PATCH", f"/admin/api/agents/{agent_id}", root, {"disabled": True})[0] == 200
    elif how == "reset":
        assert http(server, "POST", f"/admin/api/agents/{agent_id}/password", root, {})[0] == 200
    else:
        other = console_cookie(server.url, email, password)
        page = urllib.request.urlopen(urllib.request.Request(server.url + "/console/", headers={"Cookie": other}))
        token = page.read().decode().split('name="csrf-token" content="')[1].split('"')[0]
        form = urllib.parse.urlencode({"csrf_token": token}).encode()
        urllib.request.urlopen(
            urllib.request.Request(server.url + "/console/logout", data=form, headers={"Cookie": other})
        )
    frame = peer.recv_until("error")
    assert frame["code"] == "session_ended"
    assert closed(peer)
    with pytest.raises(simple_websocket.ConnectionError):
        connect(url, {"Origin": server.url, "Cookie": cookie})


# Sign-ins under load --------------------------------------------------------------------------------------


def test_a_flood_of_wrong_passwords_does_not_stall_other_requests(server):
    """Hashes run in gevent's threadpool with no transaction open: the widget script keeps answering.
    Hashed on the event loop, four such loops made it wait seconds (each check takes most of a second)."""
    stop = threading.Event()
    attempts = []

    def flood(email: str) -> None:
        jar = http_cookies()
        page = jar.open(server.url + "/console/login", timeout=30).read().decode()
        token = page.split('name="csrf_token" value="')[1].split('"')[0]
        form = urllib.parse.urlencode({"email": email, "password": "not the password", "csrf_token": token})
        while not stop.is_set():
            try:
                jar.open(server.url + "/console/login", data=form.encode(), timeout=30)
            except urllib.error.HTTPError as refused:
                attempts.append(refused.code)

    floods = [threading.Thread(target=flood, args=(e,)) for e in [ROOT_EMAIL, "nobody@example.com"] * 2]
    for thread in floods:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(attempts) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        latencies = []
        for _ in range(20):
            start = time.perf_counter()
            urllib.request.urlopen(server.url + "/widget.js", timeout=30).read()
            latencies.append(time.perf_counter() - start)
            time.sleep(0.05)
        during = len(attempts)
    finally:
        stop.set()
        for thread in floods:
            thread.join()
    assert during >= 4 and set(attempts) <= {401, 429}, attempts
    assert statistics.median(latencies) < 1.0, sorted(latencies)


def http_cookies() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
