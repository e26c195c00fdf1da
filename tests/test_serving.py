"""What keeps idle sockets cheap and big ones out, against the real server (gunicorn, gevent worker)."""

import base64
import os
import socket

import pytest
import simple_websocket

from tests.support import HOST_ORIGIN, ChatServer, migrated_app, seed
from tests.test_sockets import Peer

# How gunicorn and the socket handle frames, before any query.
pytestmark = pytest.mark.database_independent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("serving")
    world = seed(migrated_app(instance), [HOST_ORIGIN])
    running = ChatServer(instance).start()
    running.world = world
    yield running
    running.stop()


def test_compression_offered_by_the_browser_is_not_negotiated(server):
    """simple-websocket would keep ~100 KiB of zlib state for every socket that compresses."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        request = (
            f"GET /ws/widget?workstream={server.world.workstream_id} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            f"Origin: {HOST_ORIGIN}\r\n\r\n"
        )
        sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(4096)
    head = response.split(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 101")
    assert "sec-websocket-extensions" not in head


def test_a_frame_over_the_cap_closes_the_socket_as_too_big(server):
    peer = Peer(server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}")
    peer.ws.send("x" * (64 * 1024 + 1))
    with pytest.raises(simple_websocket.ConnectionClosed) as closed:
        peer.ws.receive(timeout=5)
    assert closed.value.reason == 1009
