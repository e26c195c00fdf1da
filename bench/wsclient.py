"""A small websocket client for load: plain sockets driven by one selector loop, no thread per connection,
so one client process can hold 10,000 connections and still measure the server rather than itself."""

import base64
import json
import os
import selectors
import socket
import struct
from collections.abc import Callable

# Client frames must be masked, but nothing in a load test needs the mask to hide anything: a zero mask
# leaves the payload as it is and keeps the client's CPU for measuring.
ZERO_MASK = bytes(4)


class ClientSocket:
    """One connection after its handshake: masked text frames out, the server's frames parsed in."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False
        self.state: dict = {}

    def send(self, frame: dict) -> None:
        payload = json.dumps(frame, separators=(",", ":")).encode()
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        self.sock.sendall(header + ZERO_MASK + payload)

    def feed(self) -> list[dict]:
        """Read what the socket has and return the complete text frames received, as JSON."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        if not data:
            self.closed = True
            return []
        self.buffer += data
        return self.frames()

    def frames(self) -> list[dict]:
        """The complete frames in the buffer (answering pings on the way)."""
        frames = []
        while len(self.buffer) >= 2:
            opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            offset = 2
            if length == 126:
                if len(self.buffer) < 4:
                    break
                (length,) = struct.unpack_from("!H", self.buffer, 2)
                offset = 4
            elif length == 127:
                if len(self.buffer) < 10:
                    break
                (length,) = struct.unpack_from("!Q", self.buffer, 2)
                offset = 10
            if len(self.buffer) < offset + length:
                break
            payload = bytes(self.buffer[offset : offset + length])
            del self.buffer[: offset + length]
            if opcode == 0x1:
                frames.append(json.loads(payload))
            elif opcode == 0x9:
                self._pong(payload)
            elif opcode == 0x8:
                self.closed = True
        return frames

    def _pong(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + ZERO_MASK + payload)

    def close(self) -> None:
        self.sock.close()


def handshake_all(port: int, path: str, headers: dict[str, str], count: int) -> list[ClientSocket]:
    """Open `count` connections to 127.0.0.1:port, all handshakes in flight at once."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        socks.append(sock)
    opened = []
    for sock in socks:
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed a handshake")
            response += chunk
        head, rest = response.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace").splitlines()[0])
        client = ClientSocket(sock)
        client.buffer += rest
        opened.append(client)
    return opened


def read_until(clients: list[ClientSocket], done: Callable[[ClientSocket, dict], bool]) -> None:
    """Block until every client has seen a frame for which `done` is true."""
    for client in clients:
        frames = client.frames()
        while not any(done(client, f) for f in frames):
            frames = client.feed()
            if client.closed:
                raise ConnectionError("the server closed a socket")


def loop(
    clients: list[ClientSocket], on_frame: Callable[[ClientSocket, dict], None], until: Callable[[], float | None]
):
    """Dispatch incoming frames until `until()` returns None; otherwise it returns how long select() may
    wait before `until` wants to run again (its chance to send)."""
    selector = selectors.DefaultSelector()
    for client in clients:
        client.sock.setblocking(False)
        selector.register(client.sock, selectors.EVENT_READ, client)
    try:
        while (timeout := until()) is not None:
            for key, _ in selector.select(timeout):
                client = key.data
                for frame in client.feed():
                    on_frame(client, frame)
                if client.closed:
                    selector.unregister(client.sock)
    finally:
        selector.close()
        for client in clients:
            client.sock.setblocking(True)
