"""What only PostgreSQL can show: several writers at once. (SQLite's BEGIN IMMEDIATE serialises every
writer, so there the row lock is moot; `make test` runs this file on PostgreSQL.)"""

import threading

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import conversations, routing
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, Conversation, Workstream
from tests.support import TEST_DATABASE_URL

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
