"""Faults that must never hide a message, against real server processes: another process holding
SQLite's write lock, a broken database, Redis stopped or frozen (a private redis-server), a backlog of
megabytes through a slow reader, a socket that falls behind, a second serve on one SQLite database."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import simple_websocket
from sqlalchemy import text, update
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

from app import ROOT, conversations, realtime, workstream_copies
from app.customer_auth import Identity
from app.errors import Busy
from app.events import RedisHub
from app.extensions import db
from app.models import Agent, Customer
from tests.support import (
    HOST_ORIGIN,
    TEST_DATABASE_URL,
    ChatServer,
    RedisServer,
    console_cookie,
    database_url,
    free_port,
    migrated_app,
    seed,
    use_database,
)
from tests.test_sockets import Peer, widget

on_sqlite = pytest.mark.skipif(TEST_DATABASE_URL is not None, reason="SQLite's own locking")
LOCK_WAIT_SECONDS = 4
QUEUE_LIMIT_BYTES = 256 * 1024
LONG = "ä" * 4000  # 24 KB of JSON once escaped: a few hundred make megabytes


# Thousands of long messages from one customer, faster than anyone types: past the rate limits for people.
FLOODING = {"MESSAGES_PER_CUSTOMER": "100000/minute", "FRAMES_PER_SOCKET": "100000/minute"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with a short wait for SQLite's lock and a small per-socket queue."""
    instance = tmp_path_factory.mktemp("faults")
    app = migrated_app(instance, **FLOODING)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        db.session.execute(update(Agent).values(capacity=10_000))
        db.session.commit()
    env = {
        "SQLITE_LOCK_WAIT_SECONDS": str(LOCK_WAIT_SECONDS),
        "SOCKET_QUEUE_LIMIT_BYTES": str(QUEUE_LIMIT_BYTES),
        **FLOODING,
    }
    running = ChatServer(instance, env).start()
    running.world = world
    running.app = app
    yield running
    running.stop()
    with app.app_context():
        db.engine.dispose()


def ws_url(server: ChatServer) -> str:
    return server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"


def close_code(peer: Peer, timeout: float = 15) -> int:
    """Frames are skipped until the server closes the socket; its close code."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            peer.ws.receive(timeout=1)
        except simple_websocket.ConnectionClosed as closed:
            return closed.reason
    raise AssertionError("the server did not close the socket")


def next_frame(peer: Peer, timeout: float = 15) -> dict:
    raw = peer.ws.receive(timeout=timeout)
    assert raw is not None, "no frame within the timeout"
    return json.loads(raw)


class LogSince:
    """The lines a server logs from now on."""

    def __init__(self, server: ChatServer):
        self.path = server.log
        self.start = self.path.stat().st_size

    def text(self) -> str:
        with open(self.path, "rb") as log:
            log.seek(self.start)
            return log.read().decode(errors="replace")


def assert_one_line_per_failure(log: LogSince, failures: int) -> None:
    logged = log.text()
    assert "Traceback" not in logged, logged
    assert logged.count(" failed: ") == failures, logged


class LockHolder:
    """Another process in a write transaction on the SQLite file, as the sqlite3 shell or a backup."""

    SCRIPT = (
        "import sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )

    def __init__(self, server: ChatServer):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, str(server.instance / "chat.db")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout.readline() == b"locked\n"

    def release(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def seconds(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


@on_sqlite
def test_a_lock_held_by_another_process_delays_only_the_writes(server):
    writer, _, _ = widget(server, "lock-writer")
    other, _, _ = widget(server, "lock-pinger")
    holder = LockHolder(server)
    try:
        writer.send({"type": "send", "client_id": "while-locked", "body": "stored once the lock goes"})

        def pong() -> None:
            other.send({"type": "ping"})
            assert other.recv()["type"] == "pong"

        def script() -> None:
            urllib.request.urlopen(server.url + "/widget.js", timeout=5).read()

        # Before, SQLite's busy wait froze the whole process: 10 s for widget.js, 20 s for a pong.
        assert max(seconds(pong) for _ in range(3)) < 1
        assert max(seconds(script) for _ in range(3)) < 1
        assert writer.silent(0.2), "acknowledged while another process held the lock"
    finally:
        holder.release()
    ack = writer.recv_until("ack")
    assert (ack["client_id"], ack["seq"]) == ("while-locked", 1)
    for peer in (writer, other):
        peer.close()


@on_sqlite
def test_a_lock_held_past_the_bound_is_answered_busy_stores_nothing_and_keeps_the_socket(server):
    peer, _, _ = widget(server, "locked-out")
    early = Peer(ws_url(server))  # through the handshake before the lock: its hello meets the lock
    log = LogSince(server)
    holder = LockHolder(server)
    try:
        peer.send({"type": "send", "client_id": "refused", "body": "never stored"})
        early.send({"type": "hello", "token": server.world.token("locked-hello")})
        busy = {"type": "error", "code": "database_busy", "message": Busy().message, "retry_after": 5}
        assert next_frame(peer) == {**busy, "client_id": "refused"}
        assert next_frame(early) == busy
        # A hello that could not be answered ends its socket: the widget comes back after retry_after.
        assert close_code(early) == 1008
        # The sender's socket is still there: the widget sends again after retry_after.
        peer.send({"type": "ping"})
        assert next_frame(peer)["type"] == "pong"
        request = urllib.request.Request(
            f"{server.url}/api/widget/workstreams/{server.world.workstream_id}/messages",
            data=json.dumps({"client_id": "refused-http", "body": "never stored"}).encode(),
            headers={
                "Authorization": f"Bearer {server.world.token('locked-out')}",
                "Content-Type": "application/json",
                "Origin": HOST_ORIGIN,
            },
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=LOCK_WAIT_SECONDS + 10)
        assert refused.value.code == 503
        assert refused.value.headers["Retry-After"] == "5"
        assert json.loads(refused.value.read())["error"] == {
            "code": "database_busy",
            "message": Busy().message,
            "retry_after": 5,
        }
    finally:
        holder.release()
    logged = log.text()
    assert "Traceback" not in logged and logged.count("the database is busy") == 2, logged
    peer.send({"type": "send", "client_id": "refused", "body": "stored now"})
    assert peer.recv_until("ack")["client_id"] == "refused"
    peer.close()
    again, _, backlog = widget(server, "locked-out")
    (stored,) = backlog["conversations"]
    assert [m["body"] for m in stored["messages"]] == ["stored now"]
    again.close()


def test_a_broken_database_at_hello_is_a_server_error_frame_not_a_garbled_socket(server):
    table = Customer.__table__.name
    log = LogSince(server)
    with server.app.app_context():
        db.session.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
        db.session.commit()
        try:
            peer = Peer(ws_url(server))
            peer.send({"type": "hello", "token": server.world.token("broken-db")})
            frame = next_frame(peer)
            assert (frame["type"], frame["code"]) == ("error", "server_error")
            assert close_code(peer) == 1011
        finally:
            db.session.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))
            db.session.commit()
    assert_one_line_per_failure(log, 1)
    assert "no such table" in log.text() or "does not exist" in log.text()
    fine, _, _ = widget(server, "broken-db")
    fine.close()


class SlowReader:
    """A widget's socket on a slow network: a small receive buffer, read a few KiB at a time."""

    def __init__(self, server: ChatServer, receive_buffer: int = 4096):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(30)
        self.sock.connect(("127.0.0.1", server.port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        target = f"/ws/widget?workstream={server.world.workstream_id}"
        headers = [(b"Origin", HOST_ORIGIN.encode())]
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{server.port}", target=target, extra_headers=headers)))
        self.events = self._events()
        assert next(self.events) == ("accepted", None)

    def send(self, frame: dict) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(frame))))

    def next(self) -> tuple[str, object]:
        """("frame", the text of one websocket message) or ("close", its code)."""
        return next(self.events)

    def _events(self) -> Iterator[tuple[str, object]]:
        parts: list[str] = []
        while True:
            data = self.sock.recv(4096)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    yield "accepted", None
                elif isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        yield "frame", "".join(parts)
                        parts = []
                elif isinstance(event, Ping):
                    self.sock.sendall(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    yield "close", event.code
                    return
            if not data:
                return

    def close(self) -> None:
        self.sock.close()


def long_conversation(server: ChatServer, sub: str, count: int) -> int:
    """A customer who wrote `count` messages of 4,000 non-ASCII characters; the conversation's id."""
    with server.app.app_context():
        customer = conversations.customer_for(Identity(server.world.auth_setting_id, sub, None))
        for i in range(count):
            message, _ = conversations.post_customer_message(server.world.workstream_id, customer.id, f"c{i}", LONG)
        db.session.remove()
        return message.conversation_id


def test_a_backlog_of_megabytes_arrives_whole_through_a_slow_reader_in_bounded_frames(server):
    conversation_id = long_conversation(server, "big-backlog", 450)
    reader = SlowReader(server)
    reader.send(
        {"type": "hello", "token": server.world.token("big-backlog"), "conversation_id": conversation_id, "after": 0}
    )
    kind, welcome = reader.next()
    assert json.loads(welcome)["type"] == "welcome"
    parts, sizes = [], []
    while not parts or parts[-1]["more"]:
        kind, raw = reader.next()
        assert kind == "frame", (kind, raw)
        sizes.append(len(raw.encode()))
        parts.append(json.loads(raw))
    reader.close()

    assert sum(sizes) > 10_000_000 and max(sizes) <= realtime.MAX_FRAME_BYTES
    assert all(p["type"] == "backlog" and p["reset"] is False for p in parts)
    assert [p["more"] for p in parts] == [True] * (len(parts) - 1) + [False]
    messages = [m for p in parts for entry in p["conversations"] for m in entry["messages"]]
    assert {entry["conversation"]["id"] for p in parts for entry in p["conversations"]} == {conversation_id}
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    customer = [m for m in messages if m["sender"] == "customer"]
    assert len(customer) == 450 and all(m["body"] == LONG for m in customer)


def test_a_socket_that_falls_too_far_behind_is_told_to_resync_and_resumes_from_its_cursor(server):
    writer, _, _ = widget(server, "falls-behind")
    reader = SlowReader(server)
    reader.send({"type": "hello", "token": server.world.token("falls-behind")})
    assert json.loads(reader.next()[1])["type"] == "welcome"
    assert json.loads(reader.next()[1])["type"] == "backlog"
    # The reader reads nothing meanwhile: the kernel's buffers fill, then its queue on the server.
    flood = max(300, int((send_buffer_limit() + QUEUE_LIMIT_BYTES) * 1.5 / len(json.dumps(LONG))))
    for i in range(flood):
        writer.send({"type": "send", "client_id": f"flood-{i}", "body": LONG})
        writer.recv_until("ack")
    writer.close()
    seqs, last = [], None
    while True:
        kind, raw = reader.next()
        if kind == "close":
            assert raw == 1012
            break
        last = json.loads(raw)
        if last["type"] == "message":
            seqs.append(last["message"]["seq"])
    reader.close()
    assert last == {"type": "resync"}
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[-1] < flood, "it was not behind"

    conversation_id = last_conversation(server, "falls-behind")
    again, _, backlog = widget(server, "falls-behind", conversation_id, after=seqs[-1])
    resumed = [m["seq"] for part in backlog_parts(again, backlog) for e in part["conversations"] for m in e["messages"]]
    assert resumed == list(range(seqs[-1] + 1, flood + 1))
    again.close()


def backlog_parts(peer: Peer, first: dict) -> list[dict]:
    """The backlog's parts, from the first up to the one with "more": false."""
    parts = [first]
    while parts[-1]["more"]:
        parts.append(next_frame(peer))
        assert parts[-1]["type"] == "backlog"
    return parts


def send_buffer_limit() -> int:
    """How far the kernel may grow a socket's send buffer (Linux), which a flood must exceed."""
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def last_conversation(server: ChatServer, sub: str) -> int:
    with server.app.app_context():
        customer = conversations.customer_for(Identity(server.world.auth_setting_id, sub, None))
        conversation = conversations.current_conversation(customer.id, server.world.workstream_id)
        db.session.remove()
        return conversation.id


@pytest.fixture
def redis_server(tmp_path):
    running = RedisServer(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def redis_backed(tmp_path, redis_server):
    """One server process whose hub is the private Redis, on channels only it uses."""
    instance = tmp_path / "instance"
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    prefix = f"faults-{secrets.token_hex(4)}:"
    env = {"REDIS_URL": redis_server.url, "REDIS_CHANNEL_PREFIX": prefix}
    running = ChatServer(instance, env).start()
    running.world, running.prefix, running.app = world, prefix, app
    yield running
    running.stop()
    with app.app_context():
        db.engine.dispose()


def wait_for(check, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def test_a_refused_hello_leaves_no_subscription_behind(redis_backed, redis_server):
    peer = Peer(ws_url(redis_backed))
    # The locale is checked after subscribing to the customer's channel.
    peer.send({"type": "hello", "token": redis_backed.world.token("refused"), "locale": "not a language tag"})
    assert next_frame(peer)["code"] == "invalid_request"
    assert close_code(peer) == 1008
    # What is left is the process's own, not the customer's: it hears of changed workstream settings.
    wait_for(lambda: redis_server.channels(redis_backed.prefix) == {workstream_copies.CHANNEL})


def test_redis_down_at_hello_is_an_error_frame_and_nobody_is_locked_out_after(redis_backed, redis_server):
    server = redis_backed
    before, _, _ = widget(server, "before-outage")
    email, password = server.world.agents["ada"]
    cookie = {"Cookie": console_cookie(server.url, email, password)}
    console_url = server.url.replace("http", "ws") + "/console/ws"
    agent = Peer(console_url, origin=server.url, headers=cookie)
    agent.send({"type": "ping"})
    assert agent.recv_until("pong")
    log = LogSince(server)
    redis_server.stop()
    for attempt in range(3):
        peer = Peer(ws_url(server))
        peer.send({"type": "hello", "token": server.world.token("during-outage")})
        # Nobody on this process listens to this customer yet: subscribing needs Redis.
        assert next_frame(peer) == realtime.SERVER_ERROR, attempt
        assert close_code(peer) == 1011
    # Channels this process listens to already need no Redis: another device of the first customer,
    # and a second console, are served from the database.
    other_device, _, backlog = widget(server, "before-outage")
    assert backlog["type"] == "backlog"
    second = Peer(console_url, origin=server.url, headers=cookie)
    second.send({"type": "ping"})
    assert second.recv_until("pong")
    assert_one_line_per_failure(log, 3)

    redis_server.start()
    # They may have missed events while Redis was away: told to resync, they come back from their cursor.
    for peer in (before, other_device, agent, second):
        frames = [next_frame(peer)]
        while frames[-1] != {"type": "resync"}:
            assert len(frames) < 20, frames  # live frames may come first, if they were sent before it
            frames.append(next_frame(peer))
        assert close_code(peer) == 1012
    phone, _, _ = widget(server, "during-outage")
    laptop, _, _ = widget(server, "during-outage")
    laptop.send({"type": "send", "client_id": "after", "body": "live again"})
    assert phone.recv_until("message")["message"]["body"] == "live again"
    for peer in (phone, laptop):
        peer.close()
    wait_for(lambda: redis_server.channels(server.prefix) == {workstream_copies.CHANNEL})


@on_sqlite
def test_a_second_serve_on_one_sqlite_database_is_refused_unless_redis_is_set(tmp_path, redis_server):
    instance = tmp_path / "instance"
    migrated_app(instance)
    first = ChatServer(instance).start()
    try:
        port = free_port()
        env = {**os.environ, "PERSISTENT_CHAT_INSTANCE": str(instance), "HOST": "127.0.0.1", "PORT": str(port)}
        env.pop("REDIS_URL", None)
        second = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "serve"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert "another persistent-chat serve is already running" in second.stderr
        assert "REDIS_URL" in second.stderr
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        first.stop()
    # With Redis the processes hear each other: any number may serve one database.
    env = {"REDIS_URL": redis_server.url}
    both = ChatServer.start_together(ChatServer(instance, env), ChatServer(instance, env))
    for running in both:
        running.stop()
    # The lock goes with the process holding it.
    ChatServer(instance).start().stop()


def test_backlog_frames_split_conversations_in_order_and_say_when_there_is_more():
    conversation = {"id": 1, "status": "active"}
    messages = [{"seq": i, "body": "x" * 60_000} for i in range(1, 12)]
    small = [{"seq": 1, "body": "hi"}]
    frames = realtime.backlog_frames(
        True, [(conversation, messages, False), ({"id": 2}, small, True), ({"id": 3}, [], True)]
    )
    parts = [json.loads(f) for f in frames]
    assert len(parts) == 3 and all(len(f) <= realtime.MAX_FRAME_BYTES for f in frames)
    assert [p["more"] for p in parts] == [True, True, False] and all(p["reset"] is True for p in parts)
    merged = [(e["conversation"]["id"], m["seq"]) for p in parts for e in p["conversations"] for m in e["messages"]]
    assert merged == [(1, i) for i in range(1, 12)] + [(2, 1)]
    assert parts[-1]["conversations"][-1] == {"conversation": {"id": 3}, "messages": [], "complete": True}
    assert json.loads(realtime.backlog_frames(False, [])[0]) == {
        "type": "backlog",
        "reset": False,
        "conversations": [],
        "more": False,
    }


@pytest.fixture
def redis_cluster(tmp_path, redis_server):
    """Two server processes on one database (PostgreSQL when TEST_DATABASE_URL is set, else one SQLite
    file, which REDIS_URL allows) sharing the private Redis."""
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    app = migrated_app(first)
    world = seed(app, [HOST_ORIGIN])
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_CHANNEL_PREFIX": f"faults-{secrets.token_hex(4)}:",
        "SECRET_KEY": secrets.token_urlsafe(32),
    }
    if TEST_DATABASE_URL:
        use_database(second, database_url(first))
        servers = ChatServer(first, env), ChatServer(second, env)
    else:
        servers = ChatServer(first, env), ChatServer(second, {**env, "DATABASE_URL": f"sqlite:///{first / 'chat.db'}"})
    ChatServer.start_together(*servers)
    for running in servers:
        running.world = world
    yield servers
    for running in servers:
        running.stop()
    with app.app_context():
        db.engine.dispose()


def caught_up(peer: Peer, server: ChatServer, sub: str, conversation_id: int, last: int, timeout: float) -> list[int]:
    """What a client does until it holds every message up to `last`, having shown seq 1: take live
    messages in order, and on a resync (then the close) say hello again from its contiguous cursor.
    The seqs it shows, in the order shown."""
    shown: list[int] = []
    held = 1
    deadline = time.monotonic() + timeout
    while held < last:
        assert time.monotonic() < deadline, f"only {shown} shown"
        frame = next_frame(peer, timeout=max(0.1, deadline - time.monotonic()))
        arrived = [frame["message"]] if frame["type"] == "message" else []
        if frame == {"type": "resync"}:
            assert close_code(peer) == 1012
            peer, _, backlog = widget(server, sub, conversation_id, after=held)
            arrived = [m for part in backlog_parts(peer, backlog) for e in part["conversations"] for m in e["messages"]]
        for message in arrived:
            if message["seq"] == held + 1:
                held += 1
                shown.append(held)
    close_quietly(peer)
    return shown


def close_quietly(peer: Peer) -> None:
    """Close unless the server has (it resyncs every socket of a process whose Redis came back)."""
    with suppress(simple_websocket.ConnectionClosed):
        peer.close()


def test_messages_sent_while_redis_is_down_are_stored_and_shown_after_a_resync(redis_cluster, redis_server):
    a, b = redis_cluster
    phone, _, _ = widget(a, "outage")
    laptop, _, _ = widget(b, "outage")
    laptop.send({"type": "send", "client_id": "before", "body": "before the outage"})
    conversation_id = laptop.recv_until("ack")["conversation_id"]
    assert phone.recv_until("message")["message"]["seq"] == 1

    redis_server.stop()
    for i in range(2, 22):
        laptop.send({"type": "send", "client_id": f"during-{i}", "body": f"while Redis is down {i}"})
        assert laptop.recv_until("ack")["seq"] == i
    assert phone.silent(0.5)
    redis_server.start()
    # Within 10 s of Redis returning, the phone on the other process shows all of them, once, in order.
    assert caught_up(phone, a, "outage", conversation_id, 21, timeout=10) == list(range(2, 22))
    close_quietly(laptop)


def test_acks_stay_fast_while_redis_is_frozen_and_nothing_is_missed_after(redis_cluster, redis_server):
    a, b = redis_cluster
    phone, _, _ = widget(a, "frozen")
    laptop, _, _ = widget(b, "frozen")
    laptop.send({"type": "send", "client_id": "before", "body": "before the freeze"})
    conversation_id = laptop.recv_until("ack")["conversation_id"]
    assert phone.recv_until("message")["message"]["seq"] == 1

    redis_server.freeze()
    try:
        waits = []
        for i in range(2, 22):
            started = time.monotonic()
            laptop.send({"type": "send", "client_id": f"frozen-{i}", "body": f"while Redis is frozen {i}"})
            assert laptop.recv_until("ack")["seq"] == i
            waits.append(time.monotonic() - started)
        # Publishing used to run inside the commit path: acks took 5–9 s.
        assert max(waits) < 0.5, waits
        # Longer than the hub's Redis timeout: what it could not publish becomes a resync.
        time.sleep(RedisHub.REDIS_TIMEOUT + 0.5)
    finally:
        redis_server.thaw()
    assert caught_up(phone, a, "frozen", conversation_id, 21, timeout=10) == list(range(2, 22))
    close_quietly(laptop)
