"""End-to-end figures against real server processes: delivery latency customer → agent, saturated
throughput, idle widget connections. Two deployments: SQLite with one process, and PostgreSQL + Redis
with two processes (customers on one, the agent's console on the other).

The load client is one process with one selector loop (bench/wsclient.py); its own CPU is reported so
that a saturated client is not mistaken for a saturated server.
"""

import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, make_url, text, update

from app.extensions import db
from app.models import Agent, Workstream
from bench.wsclient import ClientSocket, handshake_all, loop, read_until
from tests import support
from tests.support import ChatServer, World, console_cookie, database_url, migrated_app, seed, use_database

ORIGIN = "http://bench.example"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# One load client stands for thousands of customers on as many networks, each far busier than a person:
# the per-address and per-customer limits (README, "Limits") would refuse it, and what is measured here is
# the rest. The process's own bound on sockets still waiting for their hello stays: it is what keeps a herd
# of honest widgets from being closed by the hello deadline while they wait their turn.
UNLIMITED = {
    "SOCKETS_BEFORE_HELLO_PER_ADDRESS": "100000",
    "SOCKETS_PER_ADDRESS": "100000",
    "HANDSHAKES_PER_ADDRESS": "100000/minute",
    "MESSAGES_PER_CUSTOMER": "100000/minute",
    "FRAMES_PER_SOCKET": "100000/minute",
    "WIDGET_REQUESTS_PER_ADDRESS": "1000000/minute",
}


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        pids += process_tree(int(child))
    return pids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


@dataclass
class Deployment:
    """The servers of one mode, with one workstream and one agent with room for every conversation."""

    mode: str  # "sqlite" or "postgres"
    servers: list[ChatServer]
    world: World
    database: str | None
    infra_pids: list[int] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        mode: str,
        postgres_url: str | None = None,
        redis_url: str | None = None,
        limits: dict = UNLIMITED,
        agents: dict[str, str] | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> "Deployment":
        # tests.support makes one PostgreSQL database per instance folder when this is set.
        support.TEST_DATABASE_URL = postgres_url if mode == "postgres" else None
        first = Path(tempfile.mkdtemp(prefix="pc-bench-a-"))
        app = migrated_app(first)
        world = seed(app, [ORIGIN], agents or {"agent": "Agent"})
        with app.app_context():
            db.session.execute(update(Agent).values(capacity=10_000_000))
            # No acceptance countdown: the agent of a long run must not turn inactive for not clicking.
            db.session.execute(update(Workstream).values(accept_seconds=0))
            db.session.commit()
            if prepare is not None:
                prepare()
            db.engine.dispose()
        # The load client sends no console heartbeats: the agent must not be taken offline meanwhile.
        env = {
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PRESENCE_GRACE_SECONDS": "86400",
            # Room for 10,000 idle widgets beside the team's sockets: connections past a process's
            # worker connections wait unanswered.
            "WORKER_CONNECTIONS": "20000",
            **limits,
        }
        instances = [first]
        if mode == "postgres":
            second = Path(tempfile.mkdtemp(prefix="pc-bench-b-"))
            use_database(second, database_url(first))
            instances.append(second)
            env["REDIS_URL"] = redis_url
        servers = list(ChatServer.start_together(*(ChatServer(instance, env) for instance in instances)))
        return cls(mode, servers, world, database_url(first))

    @property
    def customers_server(self) -> ChatServer:
        return self.servers[0]

    @property
    def agent_server(self) -> ChatServer:
        return self.servers[-1]

    def server_pids(self) -> list[int]:
        return [pid for server in self.servers for pid in process_tree(server.proc.pid)]

    def database_and_redis_pids(self) -> list[int]:
        """PostgreSQL's backends serving this deployment's database, and the Redis server."""
        if self.database is None:
            return []
        engine = create_engine(make_url(self.database).set(database="postgres"))
        with engine.connect() as connection:
            backends = connection.execute(
                text("SELECT pid FROM pg_stat_activity WHERE datname = :d"), {"d": make_url(self.database).database}
            ).scalars()
            pids = list(backends)
        engine.dispose()
        for entry in Path("/proc").iterdir():
            comm = entry / "comm"
            if entry.name.isdigit() and comm.exists() and comm.read_text().strip() == "redis-server":
                pids.append(int(entry.name))
        return pids

    def worker_pids(self, server: ChatServer) -> list[int]:
        return process_tree(server.proc.pid)[1:]

    def customers(self, count: int, prefix: str) -> list[ClientSocket]:
        """`count` widgets connected and past hello (each a customer of its own), in batches."""
        port = self.customers_server.port
        path = f"/ws/widget?workstream={self.world.workstream_id}"
        opened: list[ClientSocket] = []
        for start in range(0, count, 250):
            batch = handshake_all(port, path, {"Origin": ORIGIN}, min(250, count - start))
            for i, client in enumerate(batch, start):
                client.send({"type": "hello", "token": self.world.token(f"{prefix}{i}", alg="HS256", lifetime=3600)})
            read_until(batch, lambda _c, f: f["type"] == "backlog")
            opened += batch
        return opened

    def agent(self) -> ClientSocket:
        server = self.agent_server
        email, password = self.world.agents["agent"]
        cookie = console_cookie(server.url, email, password)
        (console,) = handshake_all(server.port, "/console/ws", {"Origin": server.url, "Cookie": cookie}, 1)
        return console

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        if self.database:
            support.drop_database(self.database)


@dataclass
class Run:
    sent: int = 0
    acked: int = 0
    latencies: list[float] = field(default_factory=list)
    assigned: set = field(default_factory=set)


def _agent_frames(run: Run):
    def on_frame(_client: ClientSocket, frame: dict) -> None:
        if frame["type"] == "notify":
            run.assigned.add(frame["conversation"]["id"])
        elif frame["type"] == "message" and frame["message"]["body"].startswith("t:"):
            sent_ns = int(frame["message"]["body"][2:])
            run.latencies.append((time.perf_counter_ns() - sent_ns) / 1e6)

    return on_frame


def _warm_up(deployment: Deployment, customers: list[ClientSocket], agent: ClientSocket, run: Run) -> None:
    """Every customer's first message, and the agent assigned to all their conversations."""
    for i, client in enumerate(customers):
        client.send({"type": "send", "client_id": f"w{i}", "body": "hello"})
    on_agent = _agent_frames(run)
    deadline = time.monotonic() + 60

    def on_frame(client: ClientSocket, frame: dict) -> None:
        if client is agent:
            on_agent(client, frame)

    def waiting() -> float | None:
        return 0.05 if len(run.assigned) < len(customers) and time.monotonic() < deadline else None

    loop(customers + [agent], on_frame, waiting)
    if len(run.assigned) < len(customers):
        raise RuntimeError(f"only {len(run.assigned)} of {len(customers)} conversations reached the agent")


def latency(deployment: Deployment, conversations: int, rate: float, seconds: float) -> dict:
    """Customers send `rate` messages/s round-robin over `conversations`; the agent's console measures
    the time from send to delivery. Also server and client CPU per message."""
    customers = deployment.customers(conversations, f"lat-{secrets.token_hex(3)}-")
    agent = deployment.agent()
    run = Run()
    _warm_up(deployment, customers, agent, run)
    run.latencies.clear()
    on_agent = _agent_frames(run)
    interval = 1 / rate
    server_pids, infra_pids = deployment.server_pids(), deployment.database_and_redis_pids()
    server_cpu, infra_cpu, client_cpu = cpu_seconds(server_pids), cpu_seconds(infra_pids), time.process_time()
    started = time.perf_counter()
    stop_sending = started + seconds
    drain_until = stop_sending + 2

    def on_frame(client: ClientSocket, frame: dict) -> None:
        if client is agent:
            on_agent(client, frame)

    def tick() -> float | None:
        now = time.perf_counter()
        if now >= drain_until or (now >= stop_sending and len(run.latencies) >= run.sent):
            return None
        if now >= stop_sending:
            return 0.05
        while run.sent < (now - started) / interval:
            client = customers[run.sent % len(customers)]
            client.send({"type": "send", "client_id": f"m{run.sent}", "body": f"t:{time.perf_counter_ns()}"})
            run.sent += 1
        return max(0.0, started + run.sent * interval - time.perf_counter())

    loop(customers + [agent], on_frame, tick)
    server_cpu = cpu_seconds(server_pids) - server_cpu
    infra_cpu = cpu_seconds(infra_pids) - infra_cpu
    client_cpu = time.process_time() - client_cpu
    agent.close()
    cuts = statistics.quantiles(run.latencies, n=100)
    return {
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "lost": run.sent - len(run.latencies),
        "rate": run.sent / seconds,
        "server_us": server_cpu / run.sent * 1e6,
        "infra_us": infra_cpu / run.sent * 1e6,
        "client_us": client_cpu / run.sent * 1e6,
    }


def throughput(deployment: Deployment, conversations: int, seconds: float, window: int = 2) -> dict:
    """Every customer keeps `window` sends unacknowledged: persisted (acknowledged) messages per second."""
    customers = deployment.customers(conversations, f"tp-{secrets.token_hex(3)}-")
    agent = deployment.agent()
    run = Run()
    _warm_up(deployment, customers, agent, run)
    server_pids, infra_pids = deployment.server_pids(), deployment.database_and_redis_pids()
    counters = [0]

    def send(client: ClientSocket) -> None:
        counters[0] += 1
        run.sent += 1
        client.send({"type": "send", "client_id": f"s{counters[0]}", "body": "saturating"})

    def on_frame(client: ClientSocket, frame: dict) -> None:
        if frame["type"] == "ack" and client is not agent:
            run.acked += 1
            if time.perf_counter() < stop:
                send(client)

    server_cpu, infra_cpu, client_cpu = cpu_seconds(server_pids), cpu_seconds(infra_pids), time.process_time()
    started = time.perf_counter()
    stop = started + seconds
    for client in customers:
        for _ in range(window):
            send(client)
    loop(customers + [agent], on_frame, lambda: 0.05 if time.perf_counter() < stop else None)
    elapsed = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pids) - server_cpu
    infra_cpu = cpu_seconds(infra_pids) - infra_cpu
    client_cpu = time.process_time() - client_cpu
    for client in customers + [agent]:
        client.close()
    return {
        "rate": run.acked / elapsed,
        "server_us": server_cpu / run.acked * 1e6,
        "infra_us": infra_cpu / run.acked * 1e6,
        "client_us": client_cpu / run.acked * 1e6,
    }


def idle(deployment: Deployment, count: int, seconds: float) -> dict:
    """Memory per idle widget connection (past hello) in the customers' server process, and delivery
    latency for a few active conversations while they stay open."""
    pids = deployment.worker_pids(deployment.customers_server)
    # A first few connections load what every connection needs (code paths, caches, pools).
    warm = deployment.customers(50, f"warm-{secrets.token_hex(3)}-")
    before = rss_bytes(pids)
    sockets = deployment.customers(count, f"idle-{secrets.token_hex(3)}-")
    after = rss_bytes(pids)
    active = latency(deployment, 5, 50, seconds)
    for client in warm + sockets:
        client.close()
    return {"kib": (after - before) / count / 1024, "p99": active["p99"], "p50": active["p50"]}
