"""The shape a team creates, against real server processes: a pick workstream (capacity cost 1), two
agents who each take their conversations (5 or 50) through the console, customers on `/ws/widget`,
every message delivered to its agent's `/console/ws`. The load client is two processes of
`websockets` on uvloop (bench/loadclient.py), each holding one agent's console and that agent's
customers; the agent's console measures the delay from a customer's send to its delivery.

Figures: server CPU per persisted, delivered message (and PostgreSQL's and Redis's own CPU), saturated
messages/s, delivery at an offered 500 messages/s, memory per idle widget socket and delivery while
they are open, and a herd of widgets reconnecting at once after a restart.
"""

import collections
import multiprocessing
import re
import secrets
import statistics
import time
import urllib.request

from sqlalchemy import insert, literal, select, update

from app import clock
from app.extensions import db
from app.models import Agent, Conversation, Customer, Workstream
from bench import loadclient
from bench.realtime import ORIGIN, UNLIMITED, Deployment, cpu_seconds, process_tree, rss_bytes
from tests.support import ChatServer, World, console_cookie

CLIENTS = 2  # load client processes, one per agent


def start(mode: str, postgres: str | None, redis: str | None, per_agent: int, others: int = 0) -> Deployment:
    """A deployment whose workstream is pick with capacity cost 1 and whose two agents, Ada and Bo,
    each have room for `per_agent` conversations. `others` more conversations are going on, quiet,
    with the rest of the team (Cy stands for them): a bigger team's tables, not its traffic."""

    def prepare() -> None:
        db.session.execute(update(Workstream).values(distribution="pick", capacity_cost=1))
        db.session.execute(update(Agent).values(capacity=per_agent, presence="available"))
        if others:
            _others(others)
        db.session.commit()

    agents = {"ada": "Ada", "bo": "Bo", **({"cy": "Cy"} if others else {})}
    return Deployment.start(mode, postgres, redis, limits=UNLIMITED, agents=agents, prepare=prepare)


def _others(count: int) -> None:
    workstream = db.session.scalars(select(Workstream)).one()
    cy = db.session.scalars(select(Agent).where(Agent.name == "Cy")).one()
    now = clock.now()
    db.session.execute(
        insert(Customer),
        [{"auth_setting_id": workstream.auth_setting_id, "sub": f"other-{i}", "created_at": now} for i in range(count)],
    )
    db.session.execute(
        insert(Conversation).from_select(
            ["workstream_id", "customer_id", "agent_id", "status", "last_seq", "created_at", "updated_at"],
            select(
                literal(workstream.id),
                Customer.id,
                literal(cy.id),
                literal("active"),
                literal(0),
                literal(now),
                literal(now),
            ).where(Customer.sub.like("other-%")),
        )
    )


def _session(server: ChatServer, email: str, password: str) -> tuple[str, str]:
    """A signed-in console: its cookie and the CSRF token its page carries."""
    cookie = console_cookie(server.url, email, password)
    page = _request(server, "/console/", cookie).decode()
    return cookie, re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def _request(server: ChatServer, path: str, cookie: str, csrf: str | None = None) -> bytes:
    headers = {"Cookie": cookie, "Origin": server.url, **({"X-CSRFToken": csrf} if csrf else {})}
    request = urllib.request.Request(server.url + path, headers=headers, data=b"" if csrf else None)
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


class Clients:
    """The load client's processes; `command` runs one phase in all of them at once and returns their
    results, each with the client CPU the phase took."""

    def __init__(self, specs: list[loadclient.Spec]):
        context = multiprocessing.get_context("spawn")
        self.procs = []
        for spec in specs:
            parent, child = context.Pipe()
            process = context.Process(target=loadclient.main, args=(spec, child), daemon=True)
            process.start()
            self.procs.append((process, parent))
        self.cpu = [0.0] * len(specs)

    def send(self, name: str, *args) -> None:
        for _process, pipe in self.procs:
            pipe.send((name, args))

    def collect(self, name: str, timeout: float = 900) -> list[dict]:
        results = []
        for i, (_process, pipe) in enumerate(self.procs):
            if not pipe.poll(timeout):
                raise TimeoutError(f"the load client did not finish {name!r} within {timeout} s")
            _status, result = pipe.recv()
            result["client_cpu"], self.cpu[i] = result["cpu"] - self.cpu[i], result["cpu"]
            results.append(result)
        return results

    def command(self, name: str, *args) -> list[dict]:
        self.send(name, *args)
        return self.collect(name)

    def close(self) -> list[dict]:
        results = self.command("close")
        for process, _pipe in self.procs:
            process.join(10)
        return results


def _tokens(world: World, prefix: str, count: int) -> list[str]:
    # RS256, as sites sign them; valid for longer than any run.
    return [world.token(f"{prefix}{i}", lifetime=7200) for i in range(count)]


def _first_messages(deployment: Deployment, tokens: list[str]) -> list[tuple[int, int]]:
    """Each customer opens the widget and writes once; returns each one's (conversation, seq)."""
    url = f"ws://127.0.0.1:{deployment.customers_server.port}"
    widgets = [(t, None, 0) for t in tokens]
    cursors = []
    for start_at in range(0, len(widgets), 5000):
        opener = Clients(
            [loadclient.Spec(url, deployment.world.workstream_id, ORIGIN, widgets[start_at : start_at + 5000])]
        )
        opener.command("open")
        opener.command("once")
        cursors += opener.close()[0]["cursors"]
    return cursors


def team(deployment: Deployment, per_agent: int) -> Clients:
    """Customers with a conversation each, every one taken by an agent through the console, and the
    load client's processes connected: each with one agent's console and that agent's customers."""
    world = deployment.world
    tokens = _tokens(world, f"team-{secrets.token_hex(3)}-", CLIENTS * per_agent)
    cursors = _first_messages(deployment, tokens)
    server = deployment.agent_server
    specs = []
    for index, key in enumerate(("ada", "bo")):
        cookie, csrf = _session(server, *world.agents[key])
        mine = range(index * per_agent, (index + 1) * per_agent)
        for i in mine:
            _request(server, f"/console/api/conversations/{cursors[i][0]}/take", cookie, csrf)
        specs.append(
            loadclient.Spec(
                f"ws://127.0.0.1:{deployment.customers_server.port}",
                world.workstream_id,
                ORIGIN,
                [(tokens[i], *cursors[i]) for i in mine],
                console_cookie=cookie,
                console_url=f"ws://127.0.0.1:{server.port}/console/ws",
            )
        )
    clients = Clients(specs)
    clients.command("open")
    return clients


def measure(deployment: Deployment, clients: Clients, phase: str, seconds: float, *args) -> dict:
    """Run `phase` ("saturate" window, or "offer" rate) in every client process for `seconds`; the server
    CPU counts until the last message is delivered."""
    return measure_pids(deployment.server_pids(), deployment.database_and_redis_pids(), clients, phase, seconds, *args)


def measure_pids(servers: list[int], infra: list[int], clients: Clients, phase: str, seconds: float, *args) -> dict:
    server_cpu, infra_cpu = cpu_seconds(servers), cpu_seconds(infra)
    results = clients.command(phase, seconds, *args)
    server_cpu = cpu_seconds(servers) - server_cpu
    infra_cpu = cpu_seconds(infra) - infra_cpu
    delivered = sum(r["delivered"] for r in results)
    latencies = sorted(ns / 1e6 for r in results for ns in r["latencies_ns"])
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
    return {
        "sent": sum(r["sent"] for r in results),
        "acked": sum(r["acked"] for r in results),
        "delivered": delivered,
        "rate": delivered / seconds,
        "p50": cuts[49],
        "p99": cuts[98],
        "server_us": server_cpu / max(delivered, 1) * 1e6,
        "infra_us": infra_cpu / max(delivered, 1) * 1e6,
        "client_us": sum(r["client_cpu"] for r in results) / max(delivered, 1) * 1e6,
    }


def _widgets(deployment: Deployment, count: int, with_conversation: bool) -> list[loadclient.Spec]:
    """`count` customers' widgets split over the client processes, each (optionally) holding the cursor of
    a conversation of its own with one message in it."""
    tokens = _tokens(deployment.world, f"w-{secrets.token_hex(3)}-", count)
    cursors = _first_messages(deployment, tokens) if with_conversation else [(None, 0)] * count
    url = f"ws://127.0.0.1:{deployment.customers_server.port}"
    widgets = [(t, *c) for t, c in zip(tokens, cursors, strict=True)]
    return [loadclient.Spec(url, deployment.world.workstream_id, ORIGIN, widgets[i::CLIENTS]) for i in range(CLIENTS)]


def idle(deployment: Deployment, active: Clients, count: int, seconds: float, rate: float, churn: float = 0) -> dict:
    """Memory per idle widget socket (past hello) in the customers' worker, and delivery for the team's
    active conversations while they are open; with `churn`, while that many a second of them close and
    connect again (customers moving from page to page)."""
    pids = deployment.worker_pids(deployment.customers_server)
    before = rss_bytes(pids)
    idle_clients = Clients(_widgets(deployment, count, with_conversation=False))
    idle_clients.command("open")
    after = rss_bytes(pids)
    if churn:
        idle_clients.send("churn", churn / CLIENTS, seconds)
    figures = measure(deployment, active, "offer", seconds, rate / CLIENTS)
    reopened = sum(r["reopened"] for r in idle_clients.collect("churn")) if churn else 0
    idle_clients.close()
    kib = (after - before) / count / 1024
    return {"kib": kib, "p50": figures["p50"], "p99": figures["p99"], "reopened": reopened}


def storm(deployment: Deployment, count: int) -> dict:
    """`count` widgets, each with a conversation and nothing new in it, connected; the customers' server
    restarts; every widget comes back with the widget's own backoff. Seconds from the restarted server
    answering to the last welcome, and handshakes the server took but never answered."""
    clients = Clients(_widgets(deployment, count, with_conversation=True))
    clients.command("open")
    clients.command("storm")
    server = deployment.customers_server
    server.restart()
    ready = time.perf_counter()
    pids = process_tree(server.proc.pid)
    clients.send("wait_welcomed", 120)
    results = clients.collect("wait_welcomed")
    server_cpu = cpu_seconds(pids)
    welcomes = [t for r in results for t in r["welcomes"]]
    clients.close()
    reasons: collections.Counter[str] = collections.Counter()
    for r in results:
        reasons.update(r["reasons"])
    return {
        "welcomed": len(welcomes),
        "seconds": (max(welcomes) - ready) if welcomes else float("nan"),
        "dropped": sum(r["dropped"] for r in results),
        "refused_503": sum(r["answered_no"] for r in results),
        # The restarted server's, from its start until every widget was welcomed.
        "server_cpu": server_cpu,
        # Why attempts before the welcomes failed: HTTP statuses, error codes, close codes.
        "reasons": dict(reasons),
    }


def top_frames(raw: str, count: int = 20) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """The functions of py-spy's raw (collapsed) output with the largest shares of its samples: inclusive
    (a sample counts for every function on its stack) and self (for the one running)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        # "function (file:line)" -> "function (file)": a function counts once whichever line ran.
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(samples)
        own[frames[-1]] = own.get(frames[-1], 0) + int(samples)

    def ranked(counts: dict[str, int]) -> list[tuple[float, str]]:
        top = sorted(counts.items(), key=lambda item: -item[1])[:count]
        return [(100 * n / max(total, 1), frame) for frame, n in top]

    return ranked(inclusive), ranked(own)


def profile(deployment: Deployment, clients: Clients, seconds: float, path: str) -> dict:
    """Saturate while py-spy samples the customers' worker (every greenlet's stack is not visible: only
    the one running, which is where the CPU goes); its raw output is kept at `path`."""
    import subprocess

    worker = deployment.worker_pids(deployment.customers_server)[0]
    spy = subprocess.Popen(
        [".venv/bin/py-spy", "record", "--format", "raw", "-r", "250", "-o", path, "--pid", str(worker),
         "-d", str(int(seconds) + 2)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)
    figures = measure(deployment, clients, "saturate", seconds, 2)
    spy.wait()
    return figures


def main() -> None:
    import argparse
    import os
    from pathlib import Path

    from bench.run import POSTGRES, REDIS

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="sqlite")
    parser.add_argument("--per-agent", type=int, default=50)
    parser.add_argument("--others", type=int, default=0, help="quiet conversations the rest of the team holds")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rates", type=float, nargs="*", default=[500])
    parser.add_argument("--profile", help="keep py-spy's raw output of the saturated customers' worker here")
    args = parser.parse_args()
    deployment = start(args.mode, POSTGRES, REDIS, args.per_agent, args.others)
    try:
        clients = team(deployment, args.per_agent)
        if args.profile:
            print("saturated, sampled", profile(deployment, clients, args.seconds, args.profile), flush=True)
            inclusive, own = top_frames(Path(args.profile).read_text(), 30)
            for title, ranked in (("inclusive", inclusive), ("self", own)):
                print(f"{title}:")
                for share, frame in ranked:
                    print(f"{share:5.1f} %  {frame}")
        for _ in range(args.runs):
            print(
                "saturated", measure(deployment, clients, "saturate", args.seconds, 2), os.getloadavg()[0], flush=True
            )
            for rate in args.rates:
                figures = measure(deployment, clients, "offer", args.seconds, rate / CLIENTS)
                print(f"offer {rate}", figures, os.getloadavg()[0], flush=True)
        clients.close()
    finally:
        deployment.stop()


if __name__ == "__main__":
    main()
