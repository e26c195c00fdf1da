"""What one widget of a reconnect herd costs the server, in its two parts:

- the reads of a returning widget's hello with nothing new (token, customer, backlog, the welcome's
  conversation payloads), in process on SQLite, on the driver as the server reads them and by the
  general path alone;
- a handshake refused `503 too_many_connections` while SOCKETS_BEFORE_HELLO sockets wait for their
  hello: server CPU per refusal, against a real server (gunicorn's gevent worker).

    .venv/bin/python -m bench.herd [--runs 5] [--refusals 3000]

Medians of the runs; the whole herd is `bench.team`'s storm (bench/run.py).
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import simple_websocket

from app import conversations, customer_auth, payloads, returning, workstream_copies
from app.customer_auth import Identity
from app.extensions import db
from bench.realtime import cpu_seconds, process_tree
from tests.support import HOST_ORIGIN, ChatServer, migrated_app, seed

CUSTOMERS = 200


def hello_reads(runs: int) -> dict[str, float]:
    """µs per returning widget's hello, each the median of `runs` passes over CUSTOMERS customers:
    - "general": by the general path alone (conversations.py), with a token not seen before;
    - "returning": by the path a hello takes (returning.py), with a token not seen before (a herd after
      a restart);
    - "same token": the same, with the token the widget had (the next page, a dropped network)."""
    instance = Path(tempfile.mkdtemp(prefix="pc-bench-herd-"))
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        cursors = {}
        for i in range(CUSTOMERS):
            sub = f"returning-{i}"
            customer_id = conversations.customer_for(Identity(world.auth_setting_id, sub, None)).id
            message, _ = conversations.post_customer_message(world.workstream_id, customer_id, "first", "Hello")
            cursors[sub] = (message.conversation_id, message.seq)
        db.session.commit()

        def hello(sub: str, token: str, general: bool) -> None:
            workstream = workstream_copies.workstream(world.workstream_id)
            identity = customer_auth.verify(workstream, token)
            customer_id = None if general else returning.customer_id(identity)
            if customer_id is None:
                customer_id = conversations.customer_for(identity).id
            found = None if general else returning.backlog(customer_id, workstream, *cursors[sub])
            _reset, entries = found or conversations.backlog(customer_id, workstream.id, *cursors[sub])
            for conversation, _page, _complete in entries:
                payloads.widget_conversation(conversation)
            db.session.remove()

        paths = (("general", True, False), ("returning", False, False), ("same token", False, True))
        figures: dict[str, list[float]] = {path: [] for path, _general, _same in paths}
        for run in range(runs + 1):  # the first pass warms the statement caches
            for path, general, same in paths:
                # A claim of its own makes each pass's tokens new to the process's verified tokens.
                tokens = {sub: world.token(sub, pass_=f"{run}{path}" if not same else "same") for sub in cursors}
                started = time.perf_counter()
                for sub, token in tokens.items():
                    hello(sub, token, general)
                figures[path].append((time.perf_counter() - started) / CUSTOMERS * 1e6)
    return {path: statistics.median(values[1:]) for path, values in figures.items()}


async def _refuse_all(port: int, workstream_id: str, count: int) -> dict[str, int]:
    statuses: dict[str, int] = {}
    at_once = asyncio.Semaphore(50)

    async def one(i: int) -> None:
        async with at_once:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                (
                    f"GET /ws/widget?workstream={workstream_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                    f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {HOST_ORIGIN}\r\n"
                    f"X-Forwarded-For: 10.0.{i % 200}.{i // 200 % 200}\r\n\r\n"
                ).encode()
            )
            status = (await reader.readline()).split()[1].decode()
            statuses[status] = statuses.get(status, 0) + 1
            writer.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return statuses


def refusals(runs: int, count: int) -> float:
    """Server CPU µs per handshake refused for a full anonymous quota, median of `runs` rounds of `count`."""
    instance = Path(tempfile.mkdtemp(prefix="pc-bench-herd-"))
    world = seed(migrated_app(instance), [HOST_ORIGIN])
    # One socket that never says hello fills the quota, and is not closed for it while the rounds run;
    # with no line to wait in, every other handshake is refused.
    env = {"SOCKETS_BEFORE_HELLO": "1", "HANDSHAKES_IN_LINE": "0", "HELLO_TIMEOUT_SECONDS": "3600"}
    env["TRUSTED_PROXIES"] = "1"
    env["HANDSHAKES_PER_ADDRESS"] = "1000000/minute"
    server = ChatServer(instance, env=env).start()
    try:
        url = server.url.replace("http", "ws") + f"/ws/widget?workstream={world.workstream_id}"
        waiting = simple_websocket.Client.connect(url, headers={"Origin": HOST_ORIGIN})
        pids = process_tree(server.proc.pid)
        asyncio.run(_refuse_all(server.port, world.workstream_id, count))
        figures = []
        for _ in range(runs):
            before = cpu_seconds(pids)
            statuses = asyncio.run(_refuse_all(server.port, world.workstream_id, count))
            assert statuses == {"503": count}, statuses
            figures.append((cpu_seconds(pids) - before) / count * 1e6)
        waiting.close()
        return statistics.median(figures)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--refusals", type=int, default=3000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    reads = hello_reads(args.runs)
    print(
        f"a returning widget's hello, reads in process (SQLite): {reads['returning']:.0f} µs, "
        f"{reads['same token']:.0f} µs with the token it had ({reads['general']:.0f} µs by the general path alone)"
    )
    print(f"a handshake refused for a full anonymous quota, server CPU: {refusals(args.runs, args.refusals):.0f} µs")


if __name__ == "__main__":
    main()
