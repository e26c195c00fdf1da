"""A real HTTP server on a free port that receives webhooks, answering each path as told."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """`answers[path]` is a status code to answer, "slow" to hold the request past any timeout, or
    "garbage" to answer something that is not HTTP. `then`, when set, is called with each request after
    it has been answered (as a bot acts on what it heard); what it raises is kept in `errors`."""

    def __init__(self):
        self.received: list[Received] = []
        self.answers: dict[str, int | str] = {}
        self.released = threading.Event()
        self.then: Callable[[Received], None] | None = None
        self.errors: list[Exception] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(self.path, dict(self.headers), body)
                receiver.received.append(got)
                answer = receiver.answers.get(self.path, 200)
                if answer == "garbage":
                    self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                    self.close_connection = True
                    return
                if answer == "slow":
                    receiver.released.wait(30)
                    answer = 200
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.wfile.flush()
                if receiver.then is not None and 200 <= answer < 300:
                    try:
                        receiver.then(got)
                    except Exception as error:
                        receiver.errors.append(error)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 20) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.at(path)) >= count:
                return self.at(path)
            time.sleep(0.05)
        raise AssertionError(f"{path} received {len(self.at(path))} of {count} within {timeout} s")
