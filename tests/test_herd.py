"""A herd: hundreds of widgets saying hello at once, as after a restart, against a server whose pool of
PostgreSQL connections is far smaller than the herd. Every one is welcomed with its backlog, and none
is told the database is busy (admission.hello_turn); on SQLite the same herd is the baseline."""

import os
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest
from flask import request
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text, update

from app import conversations
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent
from bench.realtime import process_tree, rss_bytes
from bench.wsclient import handshake_all
from tests.support import HOST_ORIGIN, TEST_DATABASE_URL, ChatServer, database_url, migrated_app, seed

HERD = 300
SMALL_POOL = {"DATABASE_POOL_SIZE": "2", "DATABASE_POOL_OVERFLOW": "1", "DATABASE_POOL_TIMEOUT": "0.5"}
ROOM = {
    "SOCKETS_BEFORE_HELLO": str(HERD),
    "SOCKETS_BEFORE_HELLO_PER_ADDRESS": str(HERD),
    "SOCKETS_PER_ADDRESS": str(2 * HERD),
    "HANDSHAKES_PER_ADDRESS": "100000/minute",
    "FRAMES_PER_SOCKET": "100000/minute",
}


@pytest.fixture(scope="module")
def herd(tmp_path_factory):
    instance = tmp_path_factory.mktemp("herd")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    cursors = {}
    with app.app_context():
        db.session.execute(update(Agent).values(capacity=0))
        for i in range(HERD):
            customer_id = conversations.customer_for(Identity(world.auth_setting_id, f"herd-{i}", None)).id
            message, _ = conversations.post_customer_message(world.workstream_id, customer_id, "first", "Hello")
            cursors[f"herd-{i}"] = (message.conversation_id, message.seq)
        db.session.commit()
        db.engine.dispose()
    # No timer ticks meanwhile: one blocked on the locked table would hold the pool's spare connection.
    server = ChatServer(instance, {**SMALL_POOL, **ROOM, "SCHEDULER_INTERVAL": "3600"}).start()
    server.world = world
    yield server, cursors
    server.stop()


def answer(widget) -> list[dict]:
    """The frames a widget gets for its hello, up to its backlog or an error."""
    frames: list[dict] = []
    while not widget.closed and not any(f["type"] in ("backlog", "error") for f in frames):
        frames += widget.feed()
    return frames


def test_a_herd_far_larger_than_the_pool_is_welcomed_with_nothing_refused(herd):
    server, cursors = herd
    path = f"/ws/widget?workstream={server.world.workstream_id}"
    widgets = handshake_all(server.port, path, {"Origin": HOST_ORIGIN}, HERD)
    for widget, (sub, (conversation_id, seq)) in zip(widgets, cursors.items(), strict=True):
        widget.sock.settimeout(60)
        widget.state["conversation_id"] = conversation_id
        token = server.world.token(sub)
        widget.send({"type": "hello", "token": token, "conversation_id": conversation_id, "after": seq})
    answers = []
    for widget in widgets:
        frames = answer(widget)
        answers.append([f["type"] for f in frames if f["type"] != "error"] or [f.get("code") for f in frames])
        backlog = next((f for f in frames if f["type"] == "backlog"), None)
        if backlog is not None:
            # Nothing new since the cursor: the held conversation comes back with no messages.
            assert [c["conversation"]["id"] for c in backlog["conversations"]] == [widget.state["conversation_id"]]
            assert backlog["reset"] is False and backlog["conversations"][0]["messages"] == []
        widget.close()
    assert answers == [["welcome", "backlog"]] * HERD


def sockets_of(pid: int) -> int:
    """The process's open sockets (its file descriptors that are sockets)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(FileNotFoundError):  # closed meanwhile
            count += os.readlink(fd).startswith("socket:")
    return count


def test_widgets_that_came_and_went_leave_nothing_behind_in_the_server(herd):
    """The whole herd says hello and leaves, again and again: the worker's memory stays level. (Every
    closed socket used to stay in memory for the process's life, about 11 KiB each.)"""
    server, _cursors = herd
    (worker,) = process_tree(server.proc.pid)[1:]
    path = f"/ws/widget?workstream={server.world.workstream_id}"
    tokens = [server.world.token(f"herd-{i}") for i in range(HERD)]
    listening = sockets_of(worker)
    sizes = []
    for _round in range(6):
        widgets = handshake_all(server.port, path, {"Origin": HOST_ORIGIN}, HERD)
        for widget, token in zip(widgets, tokens, strict=True):
            widget.sock.settimeout(60)
            widget.send({"type": "hello", "token": token})
        for widget in widgets:
            assert [f["type"] for f in answer(widget)] == ["welcome", "backlog"]
            widget.close()
        # Measured once the server has closed its side of every socket.
        deadline = time.monotonic() + 30
        while sockets_of(worker) > listening and time.monotonic() < deadline:
            time.sleep(0.05)
        sizes.append(rss_bytes([worker]))
    # The first rounds grow caches, pools and the allocator's arenas; the last three would add 10 MB if
    # what the sockets held were kept.
    assert sizes[-1] - sizes[2] < 4 * 2**20, [size // 1024 for size in sizes]


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL (make test does then)")
def test_widgets_waiting_their_turn_with_valid_tokens_do_not_fill_the_anonymous_quota(herd):
    """More widgets than SOCKETS_BEFORE_HELLO say hello one after another while the database holds every
    hello up (another session locks the customers' table). Each shows a valid token, so it leaves the
    anonymous quota as it joins the queue for a turn: every handshake is let in, and once the lock goes
    every widget is welcomed."""
    server, _cursors = herd
    path = f"/ws/widget?workstream={server.world.workstream_id}"
    locker = create_engine(database_url(server.instance))
    lock = locker.connect()
    transaction = lock.begin()
    lock.execute(text("LOCK TABLE customer IN ACCESS EXCLUSIVE MODE"))
    widgets = []
    try:
        for i in range(HERD + 20):
            deadline = time.monotonic() + 5
            while True:
                try:
                    (widget,) = handshake_all(server.port, path, {"Origin": HOST_ORIGIN}, 1)
                    break
                except ConnectionError as refused:
                    # The hellos just sent may not have been read yet; a quota full of queued ones stays full.
                    assert time.monotonic() < deadline, f"widget {i}: {refused}"
                    time.sleep(0.01)
            widget.sock.settimeout(60)
            widget.send({"type": "hello", "token": server.world.token(f"queued-{i}")})
            widgets.append(widget)
    finally:
        transaction.rollback()
        lock.close()
        locker.dispose()
    answers = []
    for widget in widgets:
        answers.append([f["type"] for f in answer(widget)])
        widget.close()
    assert answers == [["welcome", "backlog"]] * (HERD + 20)


HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Origin": HOST_ORIGIN,
}


def test_while_the_anonymous_quota_and_its_line_are_full_a_handshake_is_refused_before_flask_does_anything(app, world):
    """A handshake past the quota, with no room in the line, is answered before any of the app's hooks
    runs, as Flask would answer it."""
    app.config.update(SOCKETS_BEFORE_HELLO=1, HANDSHAKES_IN_LINE=0)
    seen: list[str] = []
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: seen.append(request.path))
    client = FlaskClient(app)
    admission = app.extensions["admission"]

    admission.waiting = 1
    refused = client.get(f"/ws/widget?workstream={world.workstream_id}", headers=HANDSHAKE)
    assert refused.status_code == 503 and refused.json["error"]["code"] == "too_many_connections"
    assert refused.headers["X-Content-Type-Options"] == "nosniff" and seen == []

    # Below the quota the handshake is Flask's again (here refused for naming no workstream it knows).
    admission.waiting = 0
    unknown = client.get("/ws/widget?workstream=nosuchworkstream", headers=HANDSHAKE)
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "unknown_workstream"
    assert seen == ["/ws/widget"] and admission.waiting == 0


def test_past_the_quota_a_handshake_waits_in_line_until_a_place_frees_or_its_wait_runs_out(app, world):
    app.config.update(SOCKETS_BEFORE_HELLO=1, HANDSHAKES_IN_LINE=1, HANDSHAKE_LINE_SECONDS=30)
    admission = app.extensions["admission"]
    with admission._lock:
        admission.waiting, admission.waiting_by_address["elsewhere"] = 1, 1
    answers: list[int] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            FlaskClient(app).get("/ws/widget?workstream=nosuchworkstream", headers=HANDSHAKE).status_code
        )
    )
    waiting.start()
    deadline = time.monotonic() + 10
    while admission.in_line == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert admission.in_line == 1 and answers == []
    # The line holds one: the next is refused at once.
    refused = FlaskClient(app).get(f"/ws/widget?workstream={world.workstream_id}", headers=HANDSHAKE)
    assert refused.status_code == 503 and answers == []
    # A socket says hello (or closes): the one in line goes on to the app.
    with admission._lock:
        admission.stops_waiting("elsewhere")
    waiting.join(10)
    assert answers == [404] and admission.in_line == 0 and admission.waiting == 0

    app.config["HANDSHAKE_LINE_SECONDS"] = 0.3
    admission.waiting = 1
    started = time.monotonic()
    timed_out = FlaskClient(app).get(f"/ws/widget?workstream={world.workstream_id}", headers=HANDSHAKE)
    assert timed_out.status_code == 503 and 0.25 < time.monotonic() - started < 5 and admission.in_line == 0
