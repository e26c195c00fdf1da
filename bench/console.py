"""The console's first load, in process: the page and the snapshot its socket sends right after it
subscribes (lists, team, capacity), beside the lists over HTTP, with 200 conversations in the queue.

    .venv/bin/python bench/console.py [--runs 20] [--queue 200]

The agent holds 10 active and 10 waiting conversations and has ended 2,000; 20 colleagues; every
conversation has a few messages and a label. `first_load_ms()` is what bench.run can call: medians in
milliseconds of server time (one process, the Flask test client, no network), on SQLite unless
tests.support.TEST_DATABASE_URL says otherwise.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, update  # noqa: E402

from app import clock, conversations, labels, routing  # noqa: E402
from app.agents import add_agent  # noqa: E402
from app.console import snapshot  # noqa: E402
from app.customer_auth import Identity  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Agent, Conversation, Customer  # noqa: E402
from tests.support import migrated_app, seed  # noqa: E402

UNLIMITED = {"MESSAGES_PER_CUSTOMER": "1000000/minute", "CONVERSATIONS_PER_CUSTOMER": "1000000/minute"}


def _world(queue: int):
    """A database with the console's worst ordinary day: returns (app, agent email, password)."""
    app = migrated_app(Path(tempfile.mkdtemp(prefix="pc-bench-console-")), WTF_CSRF_ENABLED=False, **UNLIMITED)
    world = seed(app, ["http://bench.example"], {})
    with app.app_context():
        agent, password = add_agent("ada@example.com", "Ada", "agent", None, capacity=10_000)
        agent_id, email = agent.id, agent.email
        db.session.execute(
            insert(Agent),
            [{"email": f"a{i}@example.com", "name": f"Colleague {i}", "password_hash": "x"} for i in range(20)],
        )
        label_id = labels.create(None, {"name": "billing", "colour": "#aa0000"}).id
        # The agent's history: ended conversations, of which the console lists the last 20.
        customer = conversations.customer_for(Identity(world.auth_setting_id, "regular", "Regular"))
        now = clock.now()
        db.session.execute(
            insert(Conversation),
            [
                {"workstream_id": world.workstream_id, "customer_id": customer.id, "agent_id": agent_id,
                 "status": "closed", "last_seq": 0, "created_at": now, "updated_at": now, "ended_at": now}
                for _ in range(2000)
            ],
        )  # fmt: skip
        db.session.commit()

        def start(sub: str) -> int:
            customer_id = conversations.customer_for(Identity(world.auth_setting_id, sub, sub.title())).id
            for i in range(3):
                message, _ = conversations.post_customer_message(world.workstream_id, customer_id, f"{sub}-{i}", "Hi")
            return message.conversation_id

        routing.set_presence(db.session.get(Agent, agent_id), "available")
        for i in range(20):
            conversation_id = start(f"mine-{i}")
            routing.accept(db.session.get(Agent, agent_id), conversation_id)
            labels.put_on(db.session.get(Agent, agent_id), conversation_id, [label_id])
            if i % 2:
                conversations.park(db.session.get(Agent, agent_id), conversation_id)
        routing.set_presence(db.session.get(Agent, agent_id), "away")
        for i in range(queue):
            labels.put_on(db.session.get(Agent, agent_id), start(f"queued-{i}"), [label_id])
        assert db.session.scalar(select(Customer.id).where(Customer.sub == "queued-0")) is not None
        db.session.execute(update(Agent).where(Agent.id == agent_id).values(presence="available"))
        db.session.commit()
        db.session.remove()
    return app, email, password


def first_load_ms(queue: int = 200, runs: int = 20) -> dict[str, float]:
    """Medians of `runs`, each as wall time and as this process's CPU time (the same on a quiet machine;
    on a busy one the CPU time is the server's share): the console page, the socket's snapshot (read and
    serialised as frames), the lists over HTTP, and the first load (page and snapshot together)."""
    app, email, password = _world(queue)
    client = app.test_client()
    assert client.post("/console/login", data={"email": email, "password": password}).status_code == 302
    samples: dict[str, list[tuple[float, float]]] = {"page": [], "snapshot": [], "lists over HTTP": []}

    def timed(name: str, work):
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
        return result

    with app.app_context():
        agent_id = db.session.scalar(select(Agent.id).where(Agent.email == email))
        db.session.remove()
        for _ in range(runs):
            assert timed("page", lambda: client.get("/console/")).status_code == 200
            frames = timed("snapshot", lambda: snapshot.frames(snapshot.snapshot(db.session.get(Agent, agent_id))))
            db.session.remove()
            lists = timed("lists over HTTP", lambda: client.get("/console/api/conversations").json)
        assert len(lists["queue"]) + len(lists["queue_rest"]) == queue and len(lists["recent"]) == 20
        assert frames
        db.engine.dispose()
    samples["first load (page + snapshot)"] = [
        (page[0] + snap[0], page[1] + snap[1]) for page, snap in zip(samples["page"], samples["snapshot"], strict=True)
    ]
    medians = {}
    for name, values in samples.items():
        medians[f"{name}, wall"] = statistics.median(v[0] for v in values) * 1000
        medians[f"{name}, CPU"] = statistics.median(v[1] for v in values) * 1000
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--queue", type=int, default=200)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, median of {args.runs} runs, SQLite, one process, {args.queue} in the queue")
    for name, ms in first_load_ms(args.queue, args.runs).items():
        print(f"console {name + ':':40} {ms:8.2f} ms")


if __name__ == "__main__":
    main()
