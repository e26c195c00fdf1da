"""Honest traffic while anonymous clients attack: one server as `persistent-chat serve` runs it (gunicorn,
one gevent worker, SQLite, the default limits), and for each attack the p50/p99 of `GET /widget.js` and
of honest customers' messages reaching the agent's console, against the same with no attack.

    .venv/bin/python -m bench.abuse [--runs 3] [--seconds 10]

The server trusts one proxy (TRUSTED_PROXIES=1) and every client names its own address in
X-Forwarded-For, as behind a load balancer: the attackers speak from a few dozen addresses, each honest
customer from its own. Every attack is bounded in sockets and in time, and all of it is loopback.

Attacks:
  idle sockets   up to 1,500 sockets from 50 addresses that never say hello, reopened as they are closed
  fan-out flood  one token and 800 sockets that try to say hello, one more looping read and typing frames
  login flood    4 loops posting wrong passwords, for the agent's email and for unknown ones
  slow body      100 requests (console and widget POSTs) that send their headers and part of the body
  message flood  one customer sending 4,000-character messages as fast as it can, over websocket and HTTP
"""

import argparse
import http.client
import json
import multiprocessing
import os
import re
import secrets
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.realtime import ORIGIN, Deployment, Run, _agent_frames, _warm_up  # noqa: E402
from bench.wsclient import ClientSocket, handshake_all, loop  # noqa: E402

# The defaults, except that limits key on the address the (pretend) proxy reports.
LIMITS = {"TRUSTED_PROXIES": "1"}
FORK = multiprocessing.get_context("fork")
WIDGET_PATH = "/ws/widget?workstream={}"


def attacker_address(i: int) -> str:
    return f"203.0.113.{i % 250 + 1}"


def open_raw(port: int, path: str, headers: dict[str, str]) -> ClientSocket | None:
    """One websocket handshake; None when the server refuses it (a cheap refusal is the point)."""
    try:
        (client,) = handshake_all(port, path, headers, 1)
    except (ConnectionError, OSError):
        return None
    client.sock.settimeout(2)
    return client


def still_open(client: ClientSocket) -> bool:
    client.sock.setblocking(False)
    try:
        client.feed()
    except OSError:
        client.closed = True
    finally:
        client.sock.setblocking(True)
    return not client.closed


class Attack(threading.Thread):
    """Runs `step` over and over until stopped; `step` does a bounded amount of harm each time."""

    def __init__(self, step: Callable[[], None], cleanup: Callable[[], None] = lambda: None):
        super().__init__(daemon=True)
        self.step, self.cleanup = step, cleanup
        self.stopped = threading.Event()
        self.errors = 0

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    self.step()
                except OSError:
                    self.errors += 1
                    time.sleep(0.05)
        finally:
            self.cleanup()

    def stop(self) -> None:
        self.stopped.set()
        self.join(30)


def idle_sockets(deployment: Deployment) -> list[Attack]:
    port, path = deployment.customers_server.port, WIDGET_PATH.format(deployment.world.workstream_id)
    held: list[ClientSocket] = []
    counter = [0]

    def step() -> None:
        held[:] = [c for c in held if still_open(c)]
        for _ in range(min(100, 1500 - len(held))):
            counter[0] += 1
            headers = {"Origin": ORIGIN, "X-Forwarded-For": attacker_address(counter[0] % 50)}
            if client := open_raw(port, path, headers):
                held.append(client)
        time.sleep(0.1)

    return [Attack(step, lambda: [c.close() for c in held])]


def fan_out(deployment: Deployment) -> list[Attack]:
    port, path = deployment.customers_server.port, WIDGET_PATH.format(deployment.world.workstream_id)
    token = deployment.world.token("fan-out", alg="HS256", lifetime=3600)
    held: list[ClientSocket] = []
    counter = [0]

    def connect() -> ClientSocket | None:
        counter[0] += 1
        client = open_raw(port, path, {"Origin": ORIGIN, "X-Forwarded-For": attacker_address(counter[0] % 20)})
        if client:
            client.send({"type": "hello", "token": token})
        return client

    def hold() -> None:
        held[:] = [c for c in held if still_open(c)]
        for _ in range(min(100, 800 - len(held))):
            if client := connect():
                held.append(client)
        time.sleep(0.2)

    looper: list[ClientSocket | None] = [None]
    conversation: dict = {}
    sent = [0]

    def acknowledged(client: ClientSocket) -> None:
        client.send({"type": "send", "client_id": "fan-out-1", "body": "something to read"})
        deadline = time.monotonic() + 5
        while "id" not in conversation and not client.closed and time.monotonic() < deadline:
            for frame in client.feed():
                if frame["type"] == "ack":
                    conversation["id"] = frame["conversation_id"]

    def spam() -> None:
        client = looper[0]
        if client is None or client.closed:
            looper[0] = client = connect()
            if client is None:
                time.sleep(0.2)
                return
            acknowledged(client)
        sent[0] += 1
        if sent[0] % 2:
            client.send({"type": "read", "conversation_id": conversation.get("id", 1), "seq": 1})
        else:
            client.send({"type": "typing"})
        if sent[0] % 50 == 0:
            still_open(client)

    return [Attack(hold, lambda: [c.close() for c in held]), Attack(spam)]


def login_flood(deployment: Deployment) -> list[Attack]:
    url = deployment.agent_server.url
    email = deployment.world.agents["agent"][0]

    def looping(i: int) -> Attack:
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        state: dict = {"n": 0}

        def step() -> None:
            if "token" not in state:
                page = opener.open(url + "/console/login", timeout=10).read().decode()
                state["token"] = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            state["n"] += 1
            target = email if state["n"] % 2 else f"nobody{state['n']}@example.com"
            form = {"email": target, "password": secrets.token_hex(8), "csrf_token": state["token"]}
            request = urllib.request.Request(
                url + "/console/login",
                data=urllib.parse.urlencode(form).encode(),
                headers={"X-Forwarded-For": attacker_address(100 + i)},
            )
            try:
                opener.open(request, timeout=10).close()
            except urllib.error.HTTPError as error:
                error.close()

        return Attack(step)

    return [looping(i) for i in range(4)]


def slow_bodies(deployment: Deployment, cookie: str, csrf: str) -> list[Attack]:
    port = deployment.customers_server.port
    token = deployment.world.token("slow", alg="HS256", lifetime=3600)
    held: list[socket.socket] = []
    messages = f"/api/widget/workstreams/{deployment.world.workstream_id}/messages"

    def step() -> None:
        for i in range(len(held), 100):
            body = json.dumps({"presence": "available"} if i % 2 else {"client_id": f"s{i}", "body": "x" * 50})
            head = (
                f"POST {'/console/api/presence' if i % 2 else messages} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Cookie: {cookie}\r\nX-CSRFToken: {csrf}\r\nAuthorization: Bearer {token}\r\n"
                f"X-Forwarded-For: {attacker_address(150 + i % 10)}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(head.encode() + body[:5].encode())
            held.append(sock)
        time.sleep(0.2)

    return [Attack(step, lambda: [s.close() for s in held])]


def message_flood(deployment: Deployment) -> list[Attack]:
    port, path = deployment.customers_server.port, WIDGET_PATH.format(deployment.world.workstream_id)
    token = deployment.world.token("flood", alg="HS256", lifetime=3600)
    flooder: list[ClientSocket | None] = [None]
    body = "x" * 4000

    def over_socket() -> None:
        client = flooder[0]
        if client is None or not still_open(client):
            flooder[0] = client = open_raw(port, path, {"Origin": ORIGIN, "X-Forwarded-For": attacker_address(200)})
            if client is None:
                time.sleep(0.2)
                return
            client.send({"type": "hello", "token": token})
        for _ in range(20):
            client.send({"type": "send", "client_id": secrets.token_hex(8), "body": body})

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    messages = f"/api/widget/workstreams/{deployment.world.workstream_id}/messages"

    def over_http() -> None:
        payload = json.dumps({"client_id": secrets.token_hex(8), "body": body})
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-Forwarded-For": attacker_address(201),
        }
        connection.request("POST", messages, payload, headers)
        connection.getresponse().read()

    return [Attack(over_socket), Attack(over_http, connection.close)]


def attack_until(start: Callable[[Deployment], list[Attack]], deployment: Deployment, stop) -> None:
    running = start(deployment)
    for attack in running:
        attack.start()
    stop.wait()
    for attack in running:
        attack.stop()


def widget_script_times(url: str, stop: threading.Event, times: list[float]) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        try:
            urllib.request.urlopen(url + "/widget.js", timeout=30).read()
            times.append((time.perf_counter() - started) * 1000)
        except OSError:
            times.append(30_000.0)
        time.sleep(0.05)


def honest(deployment: Deployment, agent: ClientSocket, seconds: float, customers: int = 10) -> dict:
    """`customers` fresh customers, each from its own address, each sending a message every 2 s (a brisk
    person) while the agent's console measures delivery; GET /widget.js in a loop beside them."""
    port, path = deployment.customers_server.port, WIDGET_PATH.format(deployment.world.workstream_id)
    tag = secrets.token_hex(3)
    clients = []
    for i in range(customers):
        (client,) = handshake_all(port, path, {"Origin": ORIGIN, "X-Forwarded-For": f"10.{i}.0.1"}, 1)
        client.send({"type": "hello", "token": deployment.world.token(f"honest-{tag}-{i}", alg="HS256")})
        clients.append(client)
    run = Run()
    _warm_up(deployment, clients, agent, run)
    run.latencies.clear()
    on_agent = _agent_frames(run)
    refused = [0]
    stop, script_ms = threading.Event(), []
    fetcher = threading.Thread(
        target=widget_script_times, args=(deployment.customers_server.url, stop, script_ms), daemon=True
    )
    fetcher.start()
    interval = 2.0 / customers
    started = time.perf_counter()
    stop_sending, drain_until = started + seconds, started + seconds + 10

    def on_frame(client: ClientSocket, frame: dict) -> None:
        if client is agent:
            on_agent(client, frame)
        elif frame["type"] == "error":
            refused[0] += 1

    def tick() -> float | None:
        now = time.perf_counter()
        if now >= drain_until or (now >= stop_sending and len(run.latencies) >= run.sent):
            return None
        if now >= stop_sending:
            return 0.05
        while run.sent < (now - started) / interval:
            client = clients[run.sent % customers]
            client.send({"type": "send", "client_id": f"h{run.sent}", "body": f"t:{time.perf_counter_ns()}"})
            run.sent += 1
        return max(0.0, started + run.sent * interval - time.perf_counter())

    loop(clients + [agent], on_frame, tick)
    stop.set()
    fetcher.join()
    for client in clients:
        client.close()
    return {
        "script": _cuts(script_ms),
        "delivery": _cuts(run.latencies),
        "sent": run.sent,
        "lost": run.sent - len(run.latencies),
        "refused": refused[0],
    }


def _cuts(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def console_csrf(url: str, email: str, password: str) -> tuple[str, str]:
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/console/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
    page = opener.open(url + "/console/login", data=form).read().decode()
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    return "; ".join(f"{c.name}={c.value}" for c in jar), csrf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    attacks: dict[str, Callable[[Deployment], list[Attack]]] = {
        "no attack": lambda _d: [],
        "idle sockets": idle_sockets,
        "fan-out flood": fan_out,
        "login flood": login_flood,
        "slow body": lambda d: slow_bodies(d, *console_csrf(d.agent_server.url, *d.world.agents["agent"])),
        "message flood": message_flood,
    }
    rows = {}
    for name, start in attacks.items():
        results = []
        for _ in range(args.runs):
            # A fresh server per run: what one attack left behind (closing sockets, counts) is not the next's.
            deployment = Deployment.start("sqlite", limits=LIMITS)
            try:
                agent = deployment.agent()
                # The attackers in a process of their own: sharing the honest client's interpreter (its
                # lock) would slow the measuring and not the server.
                stop = FORK.Event()
                attacker = FORK.Process(target=attack_until, args=(start, deployment, stop), daemon=True)
                attacker.start()
                time.sleep(1)  # the attack under way before the honest traffic starts
                results.append(honest(deployment, agent, args.seconds))
                stop.set()
                attacker.join(30)
            finally:
                deployment.stop()
        rows[name] = {
            "script": tuple(statistics.median(r["script"][i] for r in results) for i in (0, 1)),
            "delivery": tuple(statistics.median(r["delivery"][i] for r in results) for i in (0, 1)),
            "sent": sum(r["sent"] for r in results),
            "lost": sum(r["lost"] for r in results),
            "refused": sum(r["refused"] for r in results),
        }
        print(f"{name}: {rows[name]}", file=sys.stderr)
    load = os.getloadavg()
    print(
        f"cores: {os.cpu_count()}; load average {load[0]:.1f} at the end; median of {args.runs} runs "
        f"({args.seconds:g} s each, a fresh server per run); one gevent worker, SQLite, default limits"
    )
    header = f"{'attack':<15} | {'widget.js p50 / p99':>21} | {'delivery p50 / p99':>21} | honest sent / lost / refused"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(
            f"{name:<15} | {row['script'][0]:7.1f} / {row['script'][1]:7.1f} ms | "
            f"{row['delivery'][0]:7.1f} / {row['delivery'][1]:7.1f} ms | "
            f"{row['sent']} / {row['lost']} / {row['refused']}"
        )


if __name__ == "__main__":
    main()
