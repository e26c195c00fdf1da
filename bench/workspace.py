"""Search and report timings on a big history: 100,000 conversations and 1,000,000 messages.

    .venv/bin/python bench/workspace.py [--conversations 100000] [--messages-per 10] [--runs 5]

Seeds SQLite (or TEST_DATABASE_URL's PostgreSQL) with plain INSERTs (each conversation with its status
events, a fifth of them parked once), then prints the median time of a few searches (a rare word, a
common word, a word and a status) and of a 30-day report. The load
average is printed with the figures: the machine is shared.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select  # noqa: E402

from app import reports, search  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Agent, Conversation, ConversationEvent, Customer, Message, Workstream  # noqa: E402
from tests.support import migrated_app, seed  # noqa: E402

WORDS = [
    "parcel", "order", "invoice", "refund", "delivery", "address", "payment",
    "account", "login", "password", "return", "size", "colour",
]  # fmt: skip
START = datetime(2026, 9, 1)


def populate(conversations: int, per: int) -> None:
    rng = random.Random(7)
    agent_id = db.session.scalar(select(Agent.id))
    workstream_id = db.session.scalar(select(Workstream.id))
    customers = [{"sub": f"c{i}", "display_name": f"Customer {i}"} for i in range(conversations // 10)]
    db.session.execute(insert(Customer), customers)
    customer_ids = list(db.session.scalars(select(Customer.id)))
    batch = 5000
    for first in range(0, conversations, batch):
        rows = []
        for i in range(first, min(first + batch, conversations)):
            created = START + timedelta(seconds=i * 60)
            rows.append(
                {
                    "workstream_id": workstream_id,
                    "customer_id": customer_ids[i % len(customer_ids)],
                    "agent_id": agent_id,
                    "status": "closed",
                    "last_seq": per,
                    "created_at": created,
                    "updated_at": created,
                    "ended_at": created + timedelta(minutes=20),
                }
            )
        ids = db.session.execute(insert(Conversation).returning(Conversation.id), rows).scalars().all()
        messages, events = [], []
        for conversation_id, row in zip(ids, rows, strict=True):
            steps = [(None, "open", 0), ("open", "active", 1)]
            if rng.random() < 0.2:
                steps += [("active", "waiting", 5), ("waiting", "open", 12), ("open", "active", 12)]
            steps += [("active", "wrap_up", 20), ("wrap_up", "closed", 21)]
            events += [
                {
                    "conversation_id": conversation_id,
                    "from_status": before,
                    "to_status": after,
                    "actor_kind": "system",
                    "created_at": row["created_at"] + timedelta(minutes=minutes),
                }
                for before, after, minutes in steps
            ]
            for seq in range(1, per + 1):
                words = " ".join(rng.choice(WORDS) for _ in range(8))
                if rng.random() < 0.0005:
                    words += " zeppelin"
                messages.append(
                    {
                        "conversation_id": conversation_id,
                        "seq": seq,
                        "sender_kind": "customer" if seq % 2 else "agent",
                        "body": words,
                        "created_at": row["created_at"] + timedelta(seconds=seq * 30),
                    }
                )
        db.session.execute(insert(Message), messages)
        db.session.execute(insert(ConversationEvent), events)
        db.session.commit()


def median_ms(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        action()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages-per", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        app = migrated_app(Path(directory))
        seed(app, ["http://127.0.0.1"], {"ada": "Ada"})
        with app.app_context():
            t = time.perf_counter()
            populate(args.conversations, args.messages_per)
            print(
                f"{db.engine.dialect.name}: {args.conversations} conversations, "
                f"{args.conversations * args.messages_per} messages seeded in {time.perf_counter() - t:.0f} s; "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
            cases = {
                "search, a rare word (zeppelin)": search.Filters(text="zeppelin"),
                "search, a common word (parcel)": search.Filters(text="parcel"),
                "search, two words and a status": search.Filters(text="refund invoice", status="closed"),
            }
            for name, filters in cases.items():
                print(f"{name}: {median_ms(lambda f=filters: search.search(f, 20), args.runs):.1f} ms")
            since = date(2026, 9, 1)
            until = since + timedelta(days=29)
            for by in reports.GROUPINGS:
                report = lambda b=by: db.session.execute(reports.query(since, until, b, datetime(2027, 1, 1))).all()  # noqa: E731
                print(f"report, 30 days by {by}: {median_ms(report, args.runs):.1f} ms")
            db.session.remove()
            db.engine.dispose()


if __name__ == "__main__":
    main()
