"""What only PostgreSQL can show: several writers at once. (SQLite's BEGIN IMMEDIATE serialises every
writer, so there the row lock is moot; `make test` runs this file on PostgreSQL.)"""

import threading
import time

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from app import conversations, routing
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, Conversation, Workstream
from tests.support import HOST_ORIGIN, TEST_DATABASE_URL, ChatServer, migrated_app, seed
from tests.test_sockets import widget

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="needs PostgreSQL: set TEST_DATABASE_URL (make test does when it answers)"
)


def test_routing_recounts_capacity_under_the_agents_row_lock(app, world, ctx):
    """Another process fills Ada's last slot while holding her row: a push to her must wait for it, see
    the new load and not fill her past capacity."""
    workstream = db.session.get(Workstream, world.workstream_id)
    ada = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
    db.session.execute(update(Agent).values(presence="offline"))
    db.session.commit()
    first, _ = conversations.post_customer_message(
        workstream.id, conversations.customer_for(Identity(world.auth_setting_id, "first", None)).id, "c1", "hi"
    )
    queued, _ = conversations.post_customer_message(
        workstream.id, conversations.customer_for(Identity(world.auth_setting_id, "queued", None)).id, "c2", "hi"
    )
    filler = conversations.customer_for(Identity(world.auth_setting_id, "filler", None))
    # Ada: room for two conversations at 34 units each, one of them taken.
    db.session.execute(update(Conversation).where(Conversation.id == first.conversation_id).values(
        status="active", agent_id=ada.id))  # fmt: skip
    db.session.execute(update(Agent).where(Agent.id == ada.id).values(presence="available", capacity=100))
    db.session.commit()
    ada_id, filler_id, queued_id = ada.id, filler.id, queued.conversation_id
    db.session.remove()

    with db.engine.connect() as holder:
        other = Session(bind=holder)
        other.execute(select(Agent).where(Agent.id == ada_id).with_for_update())
        other.add(
            Conversation(workstream_id=world.workstream_id, customer_id=filler_id, agent_id=ada_id, status="active")
        )
        other.flush()

        dispatched: list[int] = []

        def dispatch() -> None:
            with app.app_context():
                dispatched.append(routing.dispatch())
                db.session.remove()

        worker = threading.Thread(target=dispatch)
        worker.start()
        worker.join(0.5)
        assert worker.is_alive(), "routing did not wait for the agent's row"
        other.commit()
        worker.join(10)

    assert dispatched == [0]
    assert db.session.get(Conversation, queued_id).status == "open"
    active = select(func.count()).where(Conversation.agent_id == ada_id, Conversation.status == "active")
    assert db.session.scalar(active) == 2


LOCK_WAITS = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def test_a_socket_that_finds_every_connection_busy_is_answered_and_stays_open(tmp_path):
    """One pooled connection, held by a send waiting on a row lock another process holds: a second
    socket's frame that needs the database waits DATABASE_POOL_TIMEOUT, is answered `database_busy`
    with `retry_after`, and its socket stays open; once the lock goes, both go through."""
    instance = tmp_path / "instance"
    app = migrated_app(instance, MESSAGES_PER_CUSTOMER="1000/minute")
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    env = {"DATABASE_POOL_SIZE": "1", "DATABASE_POOL_OVERFLOW": "0", "DATABASE_POOL_TIMEOUT": "1",
           "SCHEDULER_INTERVAL": "3600"}  # fmt: skip
    server = ChatServer(instance, env).start()
    server.world = world
    try:
        waiting, _, _ = widget(server, "waiter")
        waiting.send({"type": "send", "client_id": "w1", "body": "first"})
        conversation_id = waiting.recv_until("ack")["conversation_id"]
        with app.app_context():
            ada = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
            db.session.execute(update(Conversation).values(status="active", agent_id=ada.id))
            db.session.commit()
        other, _, _ = widget(server, "other")
        with app.app_context(), db.engine.connect() as holder:
            holder.execute(select(Conversation).where(Conversation.id == conversation_id).with_for_update())
            waiting.send({"type": "send", "client_id": "w2", "body": "held up by the lock"})
            # Until the send has taken the one connection and waits on the row.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not holder.execute(LOCK_WAITS).scalar():
                holder.execute(text("SELECT pg_stat_clear_snapshot()"))
                time.sleep(0.05)
            other.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
            refused = other.recv()
            assert (refused["type"], refused["code"], refused["retry_after"]) == ("error", "database_busy", 5)
            other.send({"type": "ping"})
            assert other.recv()["type"] == "pong"
            holder.rollback()
        assert waiting.recv_until("ack")["client_id"] == "w2"
        waiting.close()
        other.close()
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()
