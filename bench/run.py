"""`make bench`: every figure of issue 7 in one table, SQLite with one process beside PostgreSQL + Redis
with two processes (when they answer), each the median of several runs.

    .venv/bin/python -m bench.run [--runs 3] [--seconds 5] [--idle 2000 10000]
"""

import argparse
import os
import statistics
import sys
from collections.abc import Callable

from bench import lifecycle, realtime
from tests import support
from tests.reachable import problem

POSTGRES = os.environ.get("TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"


def median_of(runs: int, measure: Callable[[], dict]) -> dict:
    results = [measure() for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def figures(mode: str, args) -> dict[str, str]:
    """One column of the table."""
    column: dict[str, str] = {}
    deployment = realtime.Deployment.start(mode, POSTGRES, REDIS)
    try:
        lat = median_of(args.runs, lambda: realtime.latency(deployment, 100, 500, args.seconds))
        column["delivery p50 / p95 / p99 at 500 msg/s, 100 conversations"] = (
            f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} ms"
        )
        column["  server CPU per message (+ PostgreSQL, Redis) at 500 msg/s"] = _cpu(lat)
        column["  client CPU per message at 500 msg/s"] = f"{lat['client_us']:.0f} µs"
        slow = median_of(args.runs, lambda: realtime.latency(deployment, 100, 100, args.seconds))
        column["delivery p50 / p95 / p99 at 100 msg/s, 100 conversations"] = (
            f"{slow['p50']:.1f} / {slow['p95']:.1f} / {slow['p99']:.1f} ms"
        )
        tp = median_of(args.runs, lambda: realtime.throughput(deployment, 100, args.seconds))
        column["saturated persisted messages/s"] = f"{tp['rate']:.0f}"
        column["  server CPU per message (+ PostgreSQL, Redis), saturated"] = _cpu(tp)
        column["  client CPU per message, saturated"] = f"{tp['client_us']:.0f} µs"
    finally:
        deployment.stop()
    for count in args.idle:
        runs = args.runs if count <= 2000 else 1
        idle = median_of(runs, lambda count=count: _idle_on_fresh_servers(mode, count, args.seconds))
        column[f"memory per idle widget, {count:,} open"] = f"{idle['kib']:.1f} KiB"
        column[f"  delivery p50 / p99, 5 active conversations, {count:,} idle"] = (
            f"{idle['p50']:.1f} / {idle['p99']:.1f} ms"
        )
    # The in-process figures use the same database kind (tests.support reads the URL at call time).
    support.TEST_DATABASE_URL = POSTGRES if mode == "postgres" else None
    domain = [lifecycle.messages_per_second(2000) for _ in range(args.runs)]
    column["domain only, in process: persisted messages/s"] = f"{statistics.median(d[0] for d in domain):.0f}"
    column["  CPU per message, domain only"] = f"{statistics.median(d[1] for d in domain):.0f} µs"
    pages = [lifecycle.first_page_ms(10_000) for _ in range(args.runs)]
    column["history: newest page of 10,000 messages"] = f"{statistics.median(p[0] for p in pages):.2f} ms"
    column["history: page deep inside 10,000 messages"] = f"{statistics.median(p[1] for p in pages):.2f} ms"
    many = [lifecycle.conversations_page_ms(200) for _ in range(args.runs)]
    column["history: customer with 200 earlier conversations"] = f"{statistics.median(many):.2f} ms"
    routes = [lifecycle.routing_seconds(1000, 100) for _ in range(args.runs)]
    column["routing: 1,000 queued to 100 agents"] = f"{statistics.median(routes):.2f} s"
    return column


def _idle_on_fresh_servers(mode: str, count: int, seconds: float) -> dict:
    """On servers that have served nothing else yet: memory freed by earlier runs would otherwise be
    reused by the new connections and hide their cost."""
    deployment = realtime.Deployment.start(mode, POSTGRES, REDIS)
    try:
        return realtime.idle(deployment, count, seconds)
    finally:
        deployment.stop()


def _cpu(result: dict) -> str:
    extra = f" (+ {result['infra_us']:.0f})" if result["infra_us"] else ""
    return f"{result['server_us']:.0f} µs{extra}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--idle", type=int, nargs="*", default=[2000, 10000])
    parser.add_argument("--modes", nargs="*", default=["sqlite", "postgres"])
    args = parser.parse_args()
    columns = {}
    for mode in args.modes:
        if mode == "postgres" and (reason := problem(POSTGRES) or problem(REDIS)):
            print(f"PostgreSQL + Redis skipped: {reason}", file=sys.stderr)
            continue
        columns[mode] = figures(mode, args)
    titles = {"sqlite": "SQLite, 1 process", "postgres": "PostgreSQL + Redis, 2 processes"}
    rows = list(next(iter(columns.values())))
    width = max(len(r) for r in rows)
    print(f"cores: {os.cpu_count()}; median of {args.runs} runs ({args.seconds:g} s each); load client on this machine")
    print(" " * width + "".join(f" | {titles[m]:>32}" for m in columns))
    for row in rows:
        print(row.ljust(width) + "".join(f" | {columns[m][row]:>32}" for m in columns))


if __name__ == "__main__":
    main()
