"""Attachments against the real server (gunicorn, gevent): uploads cut off mid-body or over the limit
while they stream, and messages carrying attachments over the websocket."""

import contextlib
import http.client
import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Attachment, Workstream
from tests import samples
from tests.support import HOST_ORIGIN, ChatServer, app_for, migrated_app, seed
from tests.test_sockets import widget

LIMIT = 200_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("attachment-server")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        workstream = db.session.get(Workstream, world.workstream_id)
        workstream.attachment_limits = json.dumps({"max_bytes": LIMIT})
        db.session.commit()
    running = ChatServer(instance).start()
    running.world = world
    running.app = app
    yield running
    running.stop()


def path(server, sub="alice", name="file.bin") -> str:
    return f"/api/widget/workstreams/{server.world.workstream_id}/attachments?name={name}"


def headers(server, sub="alice") -> dict:
    return {"Authorization": f"Bearer {server.world.token(sub)}", "Origin": HOST_ORIGIN}


def stored(server) -> int:
    app = app_for(server.instance)
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(Attachment))
        finally:
            db.engine.dispose()


def leftovers(server) -> list[Path]:
    """Temporary files of uploads: none may outlive their request."""
    incoming = server.instance / "attachments-incoming"
    return list(incoming.rglob("*")) if incoming.exists() else []


def raw_request(server, head: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(head.encode() + body)
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def request_head(server, extra: str) -> str:
    lines = [f"POST {path(server)} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in headers(server).items()]
    return "\r\n".join(lines) + "\r\n" + extra + "\r\n"


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_truncated_upload_is_refused_and_leaves_nothing(server):
    before = stored(server)
    body = samples.noise_png(100, 100)
    sock = raw_request(server, request_head(server, f"Content-Length: {len(body)}\r\n"), body[: len(body) // 2])
    sock.shutdown(socket.SHUT_WR)  # the connection drops before the rest arrives
    status, answer = read_answer(sock)
    sock.close()
    assert (status, answer["error"]["code"]) == (400, "attachment_incomplete")
    assert stored(server) == before
    wait_until(lambda: not leftovers(server))


def test_a_chunked_upload_is_cut_off_as_soon_as_it_passes_the_limit(server):
    """No Content-Length to refuse up front: the server counts while it streams and answers 413 while
    the client is still sending."""
    before = stored(server)
    sock = raw_request(server, request_head(server, "Transfer-Encoding: chunked\r\n"), b"")
    chunk = b"a" * 16_384
    sent = 0
    sock.settimeout(0.05)
    answered = b""
    while sent < 50 * LIMIT and not answered:
        try:
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        with contextlib.suppress(TimeoutError):
            answered = sock.recv(65536, socket.MSG_PEEK)
    sock.settimeout(10)
    status, answer = read_answer(sock)
    sock.close()
    assert (status, answer["error"]["code"]) == (413, "attachment_too_large")
    assert sent < 10 * LIMIT, f"the server read {sent} bytes before refusing"
    assert stored(server) == before
    wait_until(lambda: not leftovers(server))


def test_over_the_limit_by_its_declared_length_is_answered_before_the_body(server):
    sock = raw_request(server, request_head(server, f"Content-Length: {100 * LIMIT}\r\n"), b"")
    status, answer = read_answer(sock)  # nothing of the body was sent
    sock.close()
    assert (status, answer["error"]["code"]) == (413, "attachment_too_large")


def upload(server, data: bytes, name: str, sub="alice") -> dict:
    request = urllib.request.Request(
        server.url + path(server, sub, name),
        data=data,
        headers={**headers(server, sub), "Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())["attachment"]


def test_a_websocket_send_carries_attachments_to_every_device(server):
    image = upload(server, samples.png(), "screen.png")
    receipt = upload(server, samples.pdf(), "receipt.pdf")
    phone, _welcome, _backlog = widget(server, "alice")
    laptop, _welcome, _backlog = widget(server, "alice")
    phone.send({"type": "send", "client_id": "w1", "body": "", "attachments": [image["id"], receipt["id"]]})
    ack = phone.recv_until("ack")
    message = laptop.recv_until("message")["message"]
    assert message["seq"] == ack["seq"] and message["body"] == ""
    assert [a["name"] for a in message["attachments"]] == ["screen.png", "receipt.pdf"]
    with urllib.request.urlopen(server.url + message["attachments"][1]["url"], timeout=10) as served:
        assert served.read() == samples.pdf()

    # A reconnecting device gets them in its backlog.
    _peer, _welcome, backlog = widget(server, "alice", message["conversation_id"], message["seq"] - 1)
    (entry,) = backlog["conversations"]
    assert [a["id"] for a in entry["messages"][0]["attachments"]] == [image["id"], receipt["id"]]

    # Someone else's or a used one: an error frame with the client id, nothing stored.
    bobs = upload(server, samples.png(), "bob.png", sub="bob")
    phone.send({"type": "send", "client_id": "w2", "body": "x", "attachments": [bobs["id"]]})
    error = phone.recv_until("error")
    assert (error["code"], error["client_id"]) == ("not_found", "w2")
    phone.send({"type": "send", "client_id": "w3", "body": "x", "attachments": [image["id"]]})
    assert phone.recv_until("error")["code"] == "attachment_in_use"
    for peer in (phone, laptop, _peer):
        peer.close()
