"""The websockets against a real server process (gunicorn, gevent worker): resume, duplicate sends,
isolation between customers, the console stream, and refusals."""

import json
import time
import urllib.request

import pytest
import simple_websocket
from sqlalchemy import update

from app.extensions import db
from app.models import Agent
from tests.support import HOST_ORIGIN, ChatServer, console_cookie, migrated_app, seed

TIMEOUT = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("sockets")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        # Earlier tests leave conversations in the queue; Ada must have room for the one she is sent.
        db.session.execute(update(Agent).values(capacity=10_000))
        db.session.commit()
    running = ChatServer(instance).start()
    running.world = world
    yield running
    running.stop()


class BrowserLikeClient(simple_websocket.Client):
    """simple-websocket's client leaves the port out of the Host header; browsers do not."""

    def handshake(self):
        self.host = f"{self.host}:{self.port}"
        super().handshake()


def connect(url: str, headers: dict) -> BrowserLikeClient:
    return BrowserLikeClient.connect(url, headers=headers)


class Peer:
    def __init__(self, url: str, origin: str = HOST_ORIGIN, headers: dict | None = None):
        self.ws = connect(url, {"Origin": origin, **(headers or {})})

    def send(self, frame) -> None:
        self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def recv(self) -> dict:
        raw = self.ws.receive(timeout=TIMEOUT)
        assert raw is not None, "no frame within the timeout"
        return json.loads(raw)

    def recv_until(self, kind: str) -> dict:
        for _ in range(20):
            frame = self.recv()
            if frame["type"] == kind:
                return frame
        raise AssertionError(f"no {kind} frame")

    def silent(self, seconds: float = 0.3) -> bool:
        return self.ws.receive(timeout=seconds) is None

    def close(self) -> None:
        self.ws.close()


def widget(server, sub: str, conversation_id=None, after=0) -> tuple[Peer, dict, dict]:
    ws_url = server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"
    peer = Peer(ws_url)
    peer.send({"type": "hello", "token": server.world.token(sub), "conversation_id": conversation_id, "after": after})
    welcome = peer.recv()
    assert welcome["type"] == "welcome", welcome
    return peer, welcome, peer.recv()


def test_hello_send_ack_and_resume_from_a_sequence_number(server):
    peer, welcome, backlog = widget(server, "resume")
    assert welcome["workstream"]["mode"] == "persistent" and not welcome["workstream"]["customer_can_end"]
    assert backlog == {"type": "backlog", "reset": True, "conversations": [], "more": False}

    for i in range(1, 4):
        peer.send({"type": "send", "client_id": f"c{i}", "body": f"message {i}"})
        ack = peer.recv_until("ack")
        assert (ack["client_id"], ack["seq"]) == (f"c{i}", i)
    conversation_id = ack["conversation_id"]
    peer.close()

    again, _, backlog = widget(server, "resume", conversation_id, after=1)
    assert backlog["reset"] is False
    (entry,) = backlog["conversations"]
    assert [m["body"] for m in entry["messages"]] == ["message 2", "message 3"]
    again.close()

    fresh, _, backlog = widget(server, "resume")
    assert backlog["reset"] is True
    assert [m["seq"] for m in backlog["conversations"][0]["messages"]] == [1, 2, 3]
    assert backlog["conversations"][0]["complete"] is True
    fresh.close()


def test_a_retried_send_is_acknowledged_with_the_same_seq_and_stored_once(server):
    peer, _, _ = widget(server, "retry")
    peer.send({"type": "send", "client_id": "same", "body": "only once"})
    first = peer.recv_until("ack")
    peer.send({"type": "send", "client_id": "same", "body": "only once"})
    second = peer.recv_until("ack")
    assert first["seq"] == second["seq"] == 1
    peer.close()
    _, _, backlog = widget(server, "retry")
    assert [m["body"] for m in backlog["conversations"][0]["messages"]] == ["only once"]


def test_live_messages_reach_every_device_of_the_customer_and_nobody_else(server):
    phone, _, _ = widget(server, "two-devices")
    laptop, _, _ = widget(server, "two-devices")
    stranger, _, _ = widget(server, "stranger")
    phone.send({"type": "send", "client_id": "p1", "body": "from the phone"})
    frame = laptop.recv_until("message")
    assert frame["message"]["body"] == "from the phone" and frame["message"]["sender"] == "customer"
    assert stranger.silent()
    for peer in (phone, laptop, stranger):
        peer.close()


def test_bad_frames_get_error_frames_and_the_socket_stays_usable(server):
    peer, _, _ = widget(server, "bad-frames")
    cases = [
        ("{not json", "invalid_json"),
        (json.dumps([1]), "invalid_request"),
        ({"type": "dance"}, "unknown_type"),
        ({"type": "send", "client_id": "e1", "body": ""}, "empty_message"),
        ({"type": "send", "client_id": "e2", "body": "x" * 4001}, "message_too_long"),
        ({"type": "send", "body": "no id"}, "invalid_request"),
        ({"type": "hello", "token": "again"}, "invalid_request"),
        ({"type": "locale", "locale": "<b>fi</b>"}, "invalid_request"),
        ({"type": "locale", "locale": 358}, "invalid_request"),
    ]
    for frame, code in cases:
        peer.send(frame)
        error = peer.recv()
        assert (error["type"], error["code"]) == ("error", code), frame
    peer.send({"type": "locale", "locale": "fi-FI"})
    peer.send({"type": "send", "client_id": "e1", "body": "still works"})
    frames = [peer.recv()]
    while frames[-1]["type"] != "ack":
        frames.append(peer.recv())
    assert "error" not in [f["type"] for f in frames] and frames[-1]["seq"] == 1
    peer.send({"type": "ping"})
    assert peer.recv_until("pong")
    peer.close()


def test_frames_before_hello_are_refused(server):
    ws_url = server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"
    peer = Peer(ws_url)
    peer.send({"type": "send", "client_id": "x", "body": "sneaky"})
    assert peer.recv()["code"] == "hello_required"
    peer.close()


@pytest.mark.parametrize(
    ("token", "code"), [("garbage", "token_malformed"), (None, "token_missing"), ("", "token_missing")]
)
def test_a_bad_hello_is_answered_and_closed(server, token, code):
    ws_url = server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"
    peer = Peer(ws_url)
    peer.send({"type": "hello", "token": token})
    assert peer.recv()["code"] == code
    with pytest.raises(simple_websocket.ConnectionClosed):
        peer.ws.receive(timeout=TIMEOUT)
        peer.ws.receive(timeout=TIMEOUT)


def test_a_hello_with_a_bad_locale_is_refused(server):
    ws_url = server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"
    peer = Peer(ws_url)
    peer.send({"type": "hello", "token": server.world.token("bad-locale"), "locale": "fi; DROP TABLE"})
    assert peer.recv()["code"] == "invalid_request"
    with pytest.raises(simple_websocket.ConnectionClosed):
        peer.ws.receive(timeout=TIMEOUT)
        peer.ws.receive(timeout=TIMEOUT)


def test_guessing_another_customers_conversation_in_hello_reveals_nothing(server):
    owner, _, _ = widget(server, "owner")
    owner.send({"type": "send", "client_id": "o1", "body": "secret order 1234"})
    conversation_id = owner.recv_until("ack")["conversation_id"]
    thief, _, backlog = widget(server, "thief", conversation_id, after=0)
    assert backlog == {"type": "backlog", "reset": True, "conversations": [], "more": False}
    owner.send({"type": "send", "client_id": "o2", "body": "secret order 5678"})
    owner.recv_until("ack")
    assert thief.silent()
    owner.close()
    thief.close()


@pytest.mark.parametrize(
    ("query", "origin"),
    [
        ("workstream=WID", "http://evil.example"),
        ("workstream=WID", ""),
        ("workstream=nope", HOST_ORIGIN),
        ("", HOST_ORIGIN),
    ],
)
def test_the_handshake_is_refused_for_foreign_origins_and_unknown_workstreams(server, query, origin):
    url = server.url.replace("http", "ws") + "/ws/widget?" + query.replace("WID", server.world.workstream_id)
    headers = {"Origin": origin} if origin else {}
    if not origin:
        # simple-websocket's client always sends some Origin; an empty one stands for "none allowed".
        headers = {"Origin": "null"}
    with pytest.raises(simple_websocket.ConnectionError):
        connect(url, headers)


def sign_in(server, key="ada") -> str:
    email, password = server.world.agents[key]
    return console_cookie(server.url, email, password)


def test_the_console_socket_needs_a_session_and_its_own_origin(server):
    url = server.url.replace("http", "ws") + "/console/ws"
    with pytest.raises(simple_websocket.ConnectionError):
        connect(url, {"Origin": server.url})
    cookie = sign_in(server)
    with pytest.raises(simple_websocket.ConnectionError):
        connect(url, {"Origin": "http://evil.example", "Cookie": cookie})
    Peer(url, origin=server.url, headers={"Cookie": cookie}).close()


def test_the_console_streams_new_conversations_and_messages_to_the_agent(server):
    cookie = sign_in(server)
    console = Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})
    customer, _, _ = widget(server, "streamed")
    customer.send({"type": "send", "client_id": "s1", "body": "is anyone there?"})
    summary = console.recv_until("conversation")["conversation"]
    assert summary["status"] == "open" and summary["customer"]["sub"] == "streamed"
    notify = console.recv_until("notify")
    assert notify["kind"] == "assigned" and notify["conversation"]["agent"]["name"] == "Ada"
    assert notify["conversation"]["customer"]["sub"] == "streamed" and notify["conversation"]["status"] == "active"
    customer.send({"type": "send", "client_id": "s2", "body": "hello?"})
    message = console.recv_until("message")["message"]
    assert message["body"] == "hello?" and message["conversation_id"] == summary["id"]

    console.send({"type": "watch", "conversation_id": "x"})
    assert console.recv_until("error")["code"] == "invalid_request"
    console.send({"type": "watch", "conversation_id": 10**9})
    assert console.recv_until("error")["code"] == "not_found"
    for peer in (console, customer):
        peer.close()


def test_the_console_is_sent_a_snapshot_of_its_lists_first_then_live_frames(server):
    customer, _, _ = widget(server, "snapshotted")
    customer.send({"type": "send", "client_id": "n1", "body": "listed at once"})
    conversation_id = customer.recv_until("ack")["conversation_id"]
    cookie = sign_in(server)
    console = Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})
    snapshot = console.recv()
    assert snapshot["type"] == "snapshot" and snapshot["more"] is False
    assert snapshot["agent"]["email"] == server.world.agents["ada"][0] and "percent" in snapshot["capacity"]
    assert "Ada" in [a["name"] for a in snapshot["agents"]]
    listed = [s for name in ("mine", "waiting", "queue", "recent") for s in snapshot[name]]
    assert len({s["id"] for s in listed}) == len(listed)
    (held,) = [s for s in listed if s["id"] == conversation_id]
    assert held["last_message"]["body"] == "listed at once" and held["version"] > 0
    customer.send({"type": "send", "client_id": "n2", "body": "and live after it"})
    assert console.recv_until("message")["message"]["body"] == "and live after it"
    for peer in (console, customer):
        peer.close()


def test_open_sockets_waiting_for_their_first_frame_do_not_block_writers(server):
    """A socket's handshake must not leave a database transaction open (on SQLite it would hold the
    write lock and stall every other writer of the process)."""
    silent_widget = Peer(server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}")
    cookie = sign_in(server)
    silent_console = Peer(
        server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie}
    )
    started = time.monotonic()
    request = urllib.request.Request(
        f"{server.url}/api/widget/workstreams/{server.world.workstream_id}/messages",
        data=json.dumps({"client_id": "w1", "body": "not blocked"}).encode(),
        headers={"Authorization": f"Bearer {server.world.token('writer')}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
    assert time.monotonic() - started < 2
    silent_widget.close()
    silent_console.close()


def test_typing_read_and_locale_frames_are_checked_relayed_and_never_stored(server):
    cookie = sign_in(server)
    console = Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})
    tab1, _, _ = widget(server, "typist")
    tab2, _, _ = widget(server, "typist")
    stranger, _, _ = widget(server, "stranger")
    tab1.send({"type": "typing"})  # no conversation yet: nobody to tell, and no error
    tab1.send({"type": "send", "client_id": "t1", "body": "typing test"})
    conversation_id = tab1.recv_until("ack")["conversation_id"]
    console.recv_until("notify")

    tab1.send({"type": "typing"})
    assert console.recv_until("typing") == {"type": "typing", "conversation_id": conversation_id, "sender": "customer"}
    console.send({"type": "typing", "conversation_id": conversation_id})
    for tab in (tab1, tab2):
        assert tab.recv_until("typing") == {
            "type": "typing",
            "conversation_id": conversation_id,
            "sender": "agent",
            "sender_name": "Ada",
        }
    tab1.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    assert tab2.recv_until("read") == {"type": "read", "conversation_id": conversation_id, "seq": 1}
    assert stranger.silent()

    for frame, code in [
        ({"type": "read", "conversation_id": conversation_id, "seq": 10**6}, "invalid_request"),
        ({"type": "read", "conversation_id": conversation_id, "seq": 0}, "invalid_request"),
        ({"type": "read", "conversation_id": conversation_id, "seq": True}, "invalid_request"),
        ({"type": "read", "conversation_id": 10**9, "seq": 1}, "not_found"),
        ({"type": "locale", "locale": "not a language"}, "invalid_request"),
    ]:
        tab1.send(frame)
        assert tab1.recv_until("error")["code"] == code
    stranger.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    assert stranger.recv_until("error")["code"] == "not_found"
    tab1.send({"type": "locale", "locale": "fi"})
    # Accepted, and answered with the opening hours (their notice would now be in Finnish).
    assert tab1.recv() == {"type": "hours", "hours": {"open": True, "opens_at": None, "message": None}}
    for frame, code in [
        ({"type": "typing", "conversation_id": "x"}, "invalid_request"),
        ({"type": "typing", "conversation_id": 10**9}, "not_found"),
    ]:
        console.send(frame)
        assert console.recv_until("error")["code"] == code

    again, _, backlog = widget(server, "typist")
    stored = [m["body"] for entry in backlog["conversations"] for m in entry["messages"] if m["sender"] != "system"]
    assert stored == ["typing test"]
    for peer in (console, tab1, tab2, stranger, again):
        peer.close()
