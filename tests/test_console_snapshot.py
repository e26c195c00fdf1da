"""The console's snapshot: the lists cost a constant number of queries however long they are, and the
snapshot's frames split and join. (e2e/test_console_lists.py runs the console's reducer on it.)"""

import json

from sqlalchemy import select, update

from app import conversations, csat, labels, routing
from app.console import snapshot
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, Conversation, Customer, Workstream
from tests.support import Clock, statements


def customer(world, sub: str, name: str | None = None) -> int:
    return conversations.customer_for(Identity(world.auth_setting_id, sub, name)).id


def write(world, customer_id: int, client_id: str, body: str = "hello") -> int:
    message, _ = conversations.post_customer_message(world.workstream_id, customer_id, client_id, body)
    return message.conversation_id


def agent_id(email: str) -> int:
    return db.session.scalar(select(Agent.id).where(Agent.email == email))


def rate(world, customer_id: int, conversation_id: int) -> None:
    csat.rate(
        db.session.get(Customer, customer_id),
        db.session.get(Workstream, world.workstream_id),
        conversation_id,
        5,
        "Quick and kind",
    )


def test_the_lists_come_from_a_constant_number_of_queries(app, world):
    """The whole snapshot (lists, team, capacity) costs as many statements with 200 conversations in the
    queue as with one: with the queue window wide enough to summarise all of them, and with the
    default window and the rest as ids."""
    with app.app_context():
        Clock()
        ada_id = agent_id(world.agents["ada"][0])
        ada = lambda: db.session.get(Agent, ada_id)  # noqa: E731
        label_id = labels.create(None, {"name": "vip", "colour": "#0000aa"}).id
        db.session.execute(update(Agent).where(Agent.id == ada_id).values(capacity=1000))
        routing.set_presence(ada(), "available")
        mine = [write(world, customer(world, f"mine-{i}", f"Mine {i}"), f"m{i}") for i in range(3)]
        for conversation_id in mine:
            routing.accept(ada(), conversation_id)
            labels.put_on(ada(), conversation_id, [label_id])
            conversations.post_agent_message(ada(), conversation_id, f"r{conversation_id}", "Hello")
        conversations.park(ada(), mine[1])
        conversations.end(ada(), mine[2])
        rate(world, db.session.get(Conversation, mine[2]).customer_id, mine[2])
        routing.set_presence(ada(), "away")

        def counted(queued: int, window: int) -> int:
            app.config["CONSOLE_QUEUE_WINDOW"] = window
            db.session.remove()
            agent = ada()
            with statements() as executed:
                state = snapshot.snapshot(agent)
            summarised = min(queued, window)
            assert [len(state[name]) for name in ("mine", "waiting", "queue", "recent")] == [1, 1, summarised, 1]
            assert len(state["queue_rest"]) == queued - summarised
            assert all(s["last_message"] and s["labels"] and s["customer"]["display_name"] for s in state["queue"])
            db.session.remove()
            return len(executed)

        def queue(first: int, last: int) -> None:
            for i in range(first, last):
                someone = customer(world, f"queued-{i}", f"Queued {i}")
                labels.put_on(ada(), write(world, someone, f"q{i}"), [label_id])

        queue(0, 1)
        one = {window: counted(1, window) for window in (250, 50)}
        queue(1, 200)
        assert {window: counted(200, window) for window in (250, 50)} == one
        assert one[50] <= 12, one


def test_a_snapshot_larger_than_a_frame_goes_in_parts_that_join_into_it(app, world, monkeypatch):
    monkeypatch.setattr(snapshot, "MAX_FRAME_BYTES", 3000)
    with app.app_context():
        Clock()
        for i in range(12):
            write(world, customer(world, f"queued-{i}", f"Queued {i}"), f"q{i}", "x" * 200)
        state = snapshot.snapshot(db.session.get(Agent, agent_id(world.agents["ada"][0])))
        frames = snapshot.frames(state)
        parts = [json.loads(frame) for frame in frames]
        assert len(parts) > 2 and all(len(frame) <= 3000 for frame in frames)
        assert [part["more"] for part in parts] == [True] * (len(parts) - 1) + [False]
        assert {key: parts[0][key] for key in ("agent", "capacity", "limits")} == {
            key: state[key] for key in ("agent", "capacity", "limits")
        }
        for key in ("agents", "mine", "waiting", "queue", "recent", "queue_rest"):
            assert [item for part in parts for item in part[key]] == state[key], key
