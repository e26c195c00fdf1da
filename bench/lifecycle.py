"""In-process figures for the domain paths, on SQLite: persisted messages, routing, history pages.

    .venv/bin/python bench/lifecycle.py [--runs 5]

Each figure is the median of several runs; the machine's core count is printed with them. The
end-to-end figures (websocket delivery latency, idle connections, two processes) belong to issue 7.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, update  # noqa: E402

from app import clock, conversations, routing  # noqa: E402
from app.customer_auth import Identity  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Agent, Conversation, Message, Workstream  # noqa: E402
from tests.support import migrated_app, seed  # noqa: E402

# One bench customer writes thousands of messages in as many conversations as it likes: the rate limits
# (README, "Limits") are for people.
UNLIMITED = {"MESSAGES_PER_CUSTOMER": "1000000/minute", "CONVERSATIONS_PER_CUSTOMER": "1000000/minute"}


def fresh():
    instance = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    app = migrated_app(instance, **UNLIMITED)
    world = seed(app, ["http://bench.example"], {})
    return app, world


def messages_per_second(count: int) -> tuple[float, float]:
    """Customer messages stored and published through the lifecycle function, one conversation with an
    assigned agent. Returns (messages/s, CPU µs per message)."""
    app, world = fresh()
    with app.app_context():
        agent = Agent(email="a@example.com", name="A", password_hash="x", presence="available", capacity=10_000)
        db.session.add(agent)
        db.session.commit()
        workstream = db.session.get(Workstream, world.workstream_id)
        customer = conversations.customer_for(Identity(world.auth_setting_id, "bench", None))
        conversations.post_customer_message(workstream.id, customer.id, "warm-up", "hello")
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(count):
            conversations.post_customer_message(workstream.id, customer.id, f"m{i}", "hello there")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        db.engine.dispose()
    return count / wall, cpu / count * 1e6


def routing_seconds(conversations_count: int, agents_count: int) -> float:
    """Time for dispatch() to assign a queue of open conversations to available agents."""
    app, world = fresh()
    with app.app_context():
        db.session.execute(
            insert(Agent),
            [
                {
                    "email": f"a{i}@example.com",
                    "name": f"A{i}",
                    "password_hash": "x",
                    "presence": "offline",
                    "capacity": 10_000,
                }
                for i in range(agents_count)
            ],
        )
        workstream = db.session.get(Workstream, world.workstream_id)
        for i in range(conversations_count):
            customer = conversations.customer_for(Identity(world.auth_setting_id, f"c{i}", None))
            conversations.post_customer_message(workstream.id, customer.id, f"m{i}", "hi")
        db.session.execute(update(Agent).values(presence="available"))
        db.session.commit()
        started = time.perf_counter()
        assigned = routing.dispatch()
        elapsed = time.perf_counter() - started
        assert assigned == conversations_count, assigned
        db.engine.dispose()
    return elapsed


def first_page_ms(history: int, runs: int = 200) -> tuple[float, float]:
    """Server time for the newest page (50) and a page deep inside a conversation of `history` messages."""
    app, world = fresh()
    with app.app_context():
        workstream = db.session.get(Workstream, world.workstream_id)
        customer = conversations.customer_for(Identity(world.auth_setting_id, "long", None))
        first, _ = conversations.post_customer_message(workstream.id, customer.id, "m0", "start")
        conversation_id = first.conversation_id
        db.session.execute(
            insert(Message),
            [
                {"conversation_id": conversation_id, "seq": seq, "sender_kind": "customer", "body": f"message {seq}",
                 "client_id": f"x{seq}"}
                for seq in range(2, history + 1)
            ],
        )  # fmt: skip
        db.session.execute(update(Conversation).where(Conversation.id == conversation_id).values(last_seq=history))
        db.session.commit()
        timings = {}
        for name, before in (("newest", history + 1), ("deep", history // 2)):
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                page = conversations.messages_page(conversation_id, before=before, limit=50)
                samples.append(time.perf_counter() - started)
                db.session.rollback()
            assert len(page) == 50
            timings[name] = statistics.median(samples) * 1000
        db.engine.dispose()
    return timings["newest"], timings["deep"]


def conversations_page_ms(earlier: int, runs: int = 200) -> float:
    """Server time for what a customer with `earlier` ended conversations gets on a new device: the hello
    backlog (the latest conversation's last page) and the first page of their conversation list."""
    app, world = fresh()
    with app.app_context():
        workstream = db.session.get(Workstream, world.workstream_id)
        customer = conversations.customer_for(Identity(world.auth_setting_id, "regular", None))
        now = clock.now()
        db.session.execute(
            insert(Conversation),
            [
                {"workstream_id": workstream.id, "customer_id": customer.id, "status": "closed", "last_seq": 0,
                 "created_at": now, "updated_at": now, "ended_at": now}
                for _ in range(earlier)
            ],
        )  # fmt: skip
        db.session.commit()
        for i in range(20):
            conversations.post_customer_message(workstream.id, customer.id, f"m{i}", "back again")
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            conversations.backlog(customer.id, workstream.id, None, None)
            page = conversations.customer_conversations(customer.id, workstream.id, None, 20)
            samples.append(time.perf_counter() - started)
            db.session.rollback()
        assert len(page) == 20
        db.engine.dispose()
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, runs per figure: {args.runs}, SQLite, one process")
    rates, cpus = zip(*(messages_per_second(args.messages) for _ in range(args.runs)), strict=True)
    print(f"persisted customer messages/s:        {statistics.median(rates):8.0f}")
    print(f"CPU per persisted message:            {statistics.median(cpus):8.0f} µs")
    routes = [routing_seconds(1000, 100) for _ in range(args.runs)]
    print(f"assign 1,000 queued to 100 agents:    {statistics.median(routes):8.2f} s")
    pages = [first_page_ms(10_000) for _ in range(max(1, args.runs // 2))]
    print(f"history page, newest of 10,000:       {statistics.median(p[0] for p in pages):8.3f} ms")
    print(f"history page, deep inside 10,000:     {statistics.median(p[1] for p in pages):8.3f} ms")


if __name__ == "__main__":
    main()
