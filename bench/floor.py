"""The floor under the server's figures: the least a flask-sock server on gunicorn's gevent worker can do
for one customer message, measured with the same load client and shape as bench/team.py.

`app` speaks just enough of the widget's and the console's protocol for bench/loadclient.py: a widget
says hello and gets a welcome and an empty backlog; each send is one INSERT and COMMIT on SQLite (WAL,
synchronous=NORMAL, as the server runs it), acknowledged to its socket and relayed, as one serialised
frame, to the customer's socket and to the console socket of the load client process it belongs to. No
authentication, limits, rows of conversations or anything else: what it costs is what flask-sock,
simple-websocket, gevent and one write cost, which no change to this project's own code can go below.

    gunicorn -k gevent --worker-connections 20000 'bench.floor:create("/tmp/floor.db")'
"""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from flask import Flask, request
from flask_sock import Sock

DUMPS = json.JSONEncoder(separators=(",", ":")).encode


def create(database: str) -> Flask:
    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25, "max_message_size": 64 * 1024}
    sock = Sock(app)
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(
        "CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY, conversation_id INTEGER, seq INTEGER,"
        " body TEXT, client_id TEXT, created_at TEXT)"
    )
    # Each load client process's console, by the cookie it sends; its widgets' tokens start with it.
    consoles: dict[str, tuple[object, threading.Lock]] = {}
    sequences: dict[int, int] = defaultdict(int)
    lock = threading.Lock()

    @sock.route("/ws/widget")
    def widget(ws) -> None:
        agent = ""
        conversation_id = id(ws)
        while (raw := ws.receive()) is not None:
            frame = json.loads(raw)
            if frame["type"] == "hello":
                agent = frame["token"].split(":")[0]
                ws.send(DUMPS({"type": "welcome"}))
                ws.send(DUMPS({"type": "backlog", "reset": True, "conversations": [], "more": False}))
            elif frame["type"] == "send":
                sequences[conversation_id] += 1
                seq = sequences[conversation_id]
                with lock:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.execute(
                        "INSERT INTO message (conversation_id, seq, body, client_id, created_at)"
                        " VALUES (?, ?, ?, ?, datetime('now'))",
                        (conversation_id, seq, frame["body"], frame["client_id"]),
                    )
                    connection.execute("COMMIT")
                message = DUMPS(
                    {
                        "type": "message",
                        "message": {"conversation_id": conversation_id, "seq": seq, "body": frame["body"]},
                    }
                )
                ws.send(DUMPS({"type": "ack", "client_id": frame["client_id"], "conversation_id": conversation_id,
                               "seq": seq}))  # fmt: skip
                ws.send(message)
                if agent in consoles:
                    # Two customers' greenlets may write to one console: one at a time.
                    console, writing = consoles[agent]
                    with writing:
                        console.send(message)

    @sock.route("/console/ws")
    def console(ws) -> None:
        consoles[request.headers.get("Cookie", "")] = (ws, threading.Lock())
        while ws.receive() is not None:
            pass

    return app


def figures(per_agent: int, seconds: float, rate: float) -> dict:
    """Saturated and offered figures of the floor server for two load client processes of `per_agent`
    widgets and one console each, as bench/team.py measures the server."""
    from bench import loadclient, team
    from bench.realtime import process_tree
    from tests.support import free_port

    folder = Path(tempfile.mkdtemp(prefix="pc-floor-"))
    port = free_port()
    env = {**os.environ, "GEVENT_TRACK_GREENLET_TREE": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", f"bench.floor:create('{folder / 'floor.db'}')", "--worker-class", "gevent",
         "--worker-connections", "20000", "--bind", f"127.0.0.1:{port}", "--keep-alive", "20",
         "--no-control-socket"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"ws://127.0.0.1:{port}"
        specs = [
            loadclient.Spec(
                url,
                "floor",
                "http://bench.example",
                [(f"agent{k}:{i}", None, 0) for i in range(per_agent)],
                console_cookie=f"agent{k}",
                console_url=f"{url}/console/ws",
            )
            for k in range(team.CLIENTS)
        ]
        clients = team.Clients(specs)
        clients.command("open")
        pids = process_tree(server.pid)
        results = {
            "saturated": team.measure_pids(pids, [], clients, "saturate", seconds, 2),
            "offered": team.measure_pids(pids, [], clients, "offer", seconds, rate / team.CLIENTS),
        }
        clients.close()
        return results
    finally:
        server.terminate()
        server.wait(10)
