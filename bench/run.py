"""`make bench`: the server's figures in one table, in the shape a team creates (bench/team.py): SQLite
with one process beside PostgreSQL + Redis with two (when they answer), and the floor under both, a
flask-sock server that does one INSERT per message and nothing else (bench/floor.py). Each figure is the
median of several runs; the machine's cores and load average are printed with it.

    .venv/bin/python -m bench.run [--runs 3] [--seconds 5] [--idle 2000 10000] [--churn 100] [--storm 2000 5000 10000]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from bench import console, floor, lifecycle, team
from tests import support
from tests.reachable import problem

POSTGRES = os.environ.get("TEST_DATABASE_URL") or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
OFFERED = 500  # messages/s over the team's conversations


class Column(dict):
    """A column of the table; each figure is also printed as it is measured, so a long run that fails
    late still shows what it got."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def __setitem__(self, row: str, figure: str) -> None:
        print(f"{self.mode}: {row.strip()}: {figure}", file=sys.stderr, flush=True)
        super().__setitem__(row, figure)


def median_of(runs: int, measure: Callable[[], dict]) -> dict:
    results = [measure() for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def _team_rows(column: dict[str, str], mode: str, per_agent: int, args) -> None:
    deployment = team.start(mode, POSTGRES, REDIS, per_agent)
    try:
        clients = team.team(deployment, per_agent)
        shape = f"{per_agent} per agent"
        sat = median_of(args.runs, lambda: team.measure(deployment, clients, "saturate", args.seconds, 2))
        column[f"{shape}: server CPU per message, saturated (+ PostgreSQL, Redis)"] = _cpu(sat)
        column[f"{shape}: persisted, delivered messages/s, saturated"] = f"{sat['rate']:,.0f}"
        offer = median_of(
            args.runs, lambda: team.measure(deployment, clients, "offer", args.seconds, OFFERED / team.CLIENTS)
        )
        column[f"{shape}: {OFFERED} msg/s offered: delivered/s, p50 / p99"] = _offered(offer)
        clients.close()
    finally:
        deployment.stop()


def _idle_on_a_fresh_server(mode: str, count: int, args, churn: float = 0) -> dict:
    """Memory per idle socket on a server that has served nothing else yet (memory freed by earlier runs
    would be reused by the new sockets and hide their cost), with a small team's conversations active;
    with `churn`, delivery while that many idle widgets a second leave and come back, for longer, since
    the pauses churn brings (collections of the newcomers' objects) come seconds apart."""
    deployment = team.start(mode, POSTGRES, REDIS, 5)
    try:
        clients = team.team(deployment, 5)
        seconds = args.churn_seconds if churn else args.seconds
        result = team.idle(deployment, clients, count, seconds, 100, churn)
        clients.close()
        return result
    finally:
        deployment.stop()


def _idle_rows(column: dict[str, str], mode: str, args) -> None:
    for count in args.idle:
        runs = args.runs if count <= 2000 else 1
        idle = median_of(runs, lambda count=count: _idle_on_a_fresh_server(mode, count, args))
        column[f"memory per idle widget socket, {count:,} open"] = f"{idle['kib']:.1f} KiB"
        column[f"  delivery p50 / p99 at 100 msg/s among {count:,} idle"] = f"{idle['p50']:.1f} / {idle['p99']:.1f} ms"
    if args.churn and args.idle:
        count = max(args.idle)
        churn = _idle_on_a_fresh_server(mode, count, args, args.churn)
        column[f"  the same while {args.churn:.0f} a second come and go ({args.churn_seconds:.0f} s)"] = (
            f"{churn['p50']:.1f} / {churn['p99']:.1f} ms"
        )


def _storm_rows(column: dict[str, str], mode: str, args) -> None:
    for count in args.storm:
        deployment = team.start(mode, POSTGRES, REDIS, 1)
        try:
            result = team.storm(deployment, count)
        finally:
            deployment.stop()
        welcomed = f"{result['welcomed']:,}" if result["welcomed"] == count else f"only {result['welcomed']:,}"
        column[f"{count:,} widgets reconnecting after a restart: welcomed, dropped, refused, server CPU"] = (
            f"{welcomed} in {result['seconds']:.1f} s, {result['dropped']} dropped, "
            f"{result['refused_503']:,} refused, {result['server_cpu']:.1f} s"
        )
        print(f"{mode}: {count:,} reconnecting: what failed before the welcomes: {result['reasons']}", file=sys.stderr)


def figures(mode: str, args) -> dict[str, str]:
    """One column of the table."""
    column = Column(mode)
    for per_agent in args.per_agent:
        _team_rows(column, mode, per_agent, args)
    _idle_rows(column, mode, args)
    _storm_rows(column, mode, args)
    # The in-process figures use the same database kind (tests.support reads the URL at call time).
    support.TEST_DATABASE_URL = POSTGRES if mode == "postgres" else None
    load = [console.first_load_ms(200, 20) for _ in range(args.runs)]
    column["console first load, 200 queued: page + snapshot, server CPU"] = (
        f"{statistics.median(x['first load (page + snapshot), CPU'] for x in load):.1f} ms"
    )
    domain = [lifecycle.messages_per_second(2000) for _ in range(args.runs)]
    column["domain only, in process, general path: CPU per message"] = (
        f"{statistics.median(d[1] for d in domain):.0f} µs"
    )
    pages = [lifecycle.first_page_ms(10_000) for _ in range(args.runs)]
    column["history: newest page of 10,000 messages"] = f"{statistics.median(p[0] for p in pages):.2f} ms"
    many = [lifecycle.conversations_page_ms(200) for _ in range(args.runs)]
    column["history: customer with 200 earlier conversations"] = f"{statistics.median(many):.2f} ms"
    return column


def floor_column(args) -> dict[str, str]:
    column = Column("floor")
    for per_agent in args.per_agent:
        results = [floor.figures(per_agent, args.seconds, OFFERED) for _ in range(args.runs)]
        sat = {k: statistics.median(r["saturated"][k] for r in results) for k in results[0]["saturated"]}
        offer = {k: statistics.median(r["offered"][k] for r in results) for k in results[0]["offered"]}
        shape = f"{per_agent} per agent"
        column[f"{shape}: server CPU per message, saturated (+ PostgreSQL, Redis)"] = _cpu(sat)
        column[f"{shape}: persisted, delivered messages/s, saturated"] = f"{sat['rate']:,.0f}"
        column[f"{shape}: {OFFERED} msg/s offered: delivered/s, p50 / p99"] = _offered(offer)
    return column


def _cpu(result: dict) -> str:
    extra = f" (+ {result['infra_us']:.0f})" if result["infra_us"] else ""
    return f"{result['server_us']:,.0f} µs{extra}"


def _offered(result: dict) -> str:
    return f"{result['rate']:,.0f}/s, {result['p50']:.1f} / {result['p99']:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--per-agent", type=int, nargs="*", default=[5, 50])
    parser.add_argument("--idle", type=int, nargs="*", default=[2000, 10000])
    parser.add_argument("--churn", type=float, default=100, help="idle widgets a second that leave and come back")
    parser.add_argument("--churn-seconds", type=float, default=30)
    parser.add_argument("--storm", type=int, nargs="*", default=[2000, 5000, 10000])
    parser.add_argument("--modes", nargs="*", default=["sqlite", "postgres", "floor"])
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    started, load_before = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    columns = {}
    for mode in args.modes:
        if mode == "postgres" and (reason := problem(POSTGRES) or problem(REDIS)):
            print(f"PostgreSQL + Redis skipped: {reason}", file=sys.stderr)
            continue
        columns[mode] = floor_column(args) if mode == "floor" else figures(mode, args)
    titles = {
        "sqlite": "SQLite, 1 process",
        "postgres": "PostgreSQL + Redis, 2 processes",
        "floor": "floor: flask-sock + 1 INSERT",
    }
    rows = list(dict.fromkeys(row for column in columns.values() for row in column))
    width = max(len(r) for r in rows)
    print(
        f"commit {commit}, {started}; {os.cpu_count()} cores, load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after; median of {args.runs} runs of {args.seconds:g} s (10,000 idle and "
        "the reconnect herds: 1 run); the load client on this machine"
    )
    print("| figure | " + " | ".join(titles[m] for m in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for row in rows:
        print(f"| {row.ljust(width)} | " + " | ".join(columns[m].get(row, "") for m in columns) + " |")


if __name__ == "__main__":
    main()
