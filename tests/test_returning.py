"""A returning widget's hello, read on the driver (returning.py): the same welcome as the general path
wherever it answers, the general path wherever anything is to be written or sent, and no statement
through the ORM (on SQLite, no write lock) when it answers."""

import sqlite3
import time

import pytest
from sqlalchemy import select, update

from app import conversations, payloads, returning, routing, workstream_copies
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, Conversation, Customer, Workstream
from tests.support import statements
from tests.test_faults import on_sqlite


def welcome(world, customer_id: int, cursor: tuple, fast: bool):
    """What the welcome's backlog says, by one path or the other (None: the fast one declined)."""
    workstream = workstream_copies.workstream(world.workstream_id)
    if fast:
        found = returning.backlog(customer_id, workstream, *cursor)
    else:
        found = conversations.backlog(customer_id, world.workstream_id, *cursor)
    if found is None:
        return None
    reset, entries = found
    said = [(payloads.widget_conversation(c), payloads.messages(page), complete) for c, page, complete in entries]
    db.session.remove()
    return reset, said


def customer(world, sub: str = "carol", name: str | None = None, email: str | None = None) -> int:
    found = conversations.customer_for(Identity(world.auth_setting_id, sub, name, email=email)).id
    db.session.remove()
    return found


def conversation_of(world, customer_id: int, client_id: str = "c0") -> tuple[int, int]:
    message, _ = conversations.post_customer_message(world.workstream_id, customer_id, client_id, "Hello")
    db.session.commit()
    return message.conversation_id, message.seq


def ada() -> Agent:
    return db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))


def taken(world, conversation_id: int) -> None:
    db.session.execute(update(Workstream).values(distribution="pick", capacity_cost=1))
    db.session.commit()
    routing.take(ada(), conversation_id)
    db.session.commit()


def test_a_customer_with_no_conversation_is_welcomed_alike(ctx, world):
    carol = customer(world)
    assert welcome(world, carol, (None, None), fast=True) == welcome(world, carol, (None, None), fast=False)
    assert welcome(world, carol, (None, None), fast=True) == (True, [])


@pytest.mark.parametrize("state", ["open", "active", "waiting", "bot"])
def test_a_held_conversation_with_nothing_new_is_welcomed_alike(ctx, world, state):
    carol = customer(world)
    conversation_id, seq = conversation_of(world, carol)
    if state in ("active", "waiting"):
        taken(world, conversation_id)
    if state == "waiting":
        conversations.park(ada(), conversation_id)
    if state == "bot":
        db.session.execute(update(Workstream).values(bot_name="Robin"))
        db.session.execute(update(Conversation).values(status="bot"))
        db.session.commit()
    db.session.execute(update(Conversation).values(customer_read_seq=seq))
    db.session.commit()
    fast = welcome(world, carol, (conversation_id, seq), fast=True)
    assert fast is not None
    assert fast == welcome(world, carol, (conversation_id, seq), fast=False)
    ((said, page, complete),) = fast[1]
    assert said["status"] == state and said["read_seq"] == seq and page == [] and complete
    assert said["agent_name"] == {"open": None, "active": "Ada", "waiting": "Ada", "bot": "Robin"}[state]


def test_anything_to_send_or_start_over_is_left_to_the_general_path(ctx, world):
    carol = customer(world)
    conversation_id, seq = conversation_of(world, carol)
    conversations.post_customer_message(world.workstream_id, carol, "c1", "Are you there?")
    db.session.commit()
    declined = {
        "a message after the cursor": (conversation_id, seq),
        "a cursor past the conversation": (conversation_id, seq + 5),
        "someone else's conversation": (conversation_id + 100, 0),
        "no cursor, but a conversation": (None, None),
        "a cursor that is not a number": ("1", seq),
    }
    for what, cursor in declined.items():
        assert welcome(world, carol, cursor, fast=True) is None, what
        assert welcome(world, carol, cursor, fast=False) is not None, what

    # Not a conversation anyone has: the widget starts over (the drivers refuse such a number outright).
    assert welcome(world, carol, (2**70, 1), fast=False)[0] is True
    ended_id, ended_seq = conversation_of(world, customer(world, "dave"))
    db.session.execute(update(Conversation).where(Conversation.id == ended_id).values(status="closed"))
    db.session.commit()
    assert welcome(world, customer(world, "dave"), (ended_id, ended_seq + 1), fast=True) is None


def test_a_newer_conversation_is_left_to_the_general_path(ctx, world):
    carol = customer(world)
    first_id, first_seq = conversation_of(world, carol)
    db.session.execute(update(Conversation).values(status="closed"))
    db.session.commit()
    conversation_of(world, carol, "c1")
    assert welcome(world, carol, (first_id, first_seq), fast=True) is None
    reset, said = welcome(world, carol, (first_id, first_seq), fast=False)
    assert not reset and len(said) == 2


def test_the_customer_is_found_only_when_the_token_changes_nothing(ctx, world):
    carol = customer(world, name="Carol", email="carol@example.com")

    def found(sub="carol", name=None, email="carol@example.com", setting=world.auth_setting_id):
        return returning.customer_id(Identity(setting, sub, name, email=email))

    assert found() == carol
    assert found(name="Carol") == carol
    assert found(name="Caroline") is None, "a new name is written"
    assert found(email="c@example.com") is None, "a new email is written"
    assert found(email=None) is None, "a token without email clears it"
    assert found(sub="someone new") is None, "a new customer is created"
    # A visitor has no authentication setting: found by sub alone, not by `auth_setting_id = NULL`.
    visitor = conversations.customer_for(Identity(None, "visitor-1", None, authenticated=False)).id
    db.session.remove()
    assert found(sub="visitor-1", email=None, setting=None) == visitor
    assert found(sub="carol", email="carol@example.com", setting=None) is None


def test_a_returning_hello_runs_nothing_through_the_orm(ctx, world):
    carol = customer(world)
    conversation_id, seq = conversation_of(world, carol)
    workstream = workstream_copies.workstream(world.workstream_id)
    with statements() as executed:
        assert returning.customer_id(Identity(world.auth_setting_id, "carol", None)) == carol
        assert returning.backlog(carol, workstream, conversation_id, seq) is not None
    assert executed == []
    assert not db.session().in_transaction()


@on_sqlite
def test_a_returning_widget_is_welcomed_while_another_process_holds_the_write_lock(ctx, world, app):
    """A backup or a command beside the server holds SQLite's write lock: a hello with nothing to write
    reads past it at once, where the general path's transaction would wait for the lock."""
    carol = customer(world)
    conversation_id, seq = conversation_of(world, carol)
    workstream = workstream_copies.workstream(world.workstream_id)
    db.session.remove()
    holder = sqlite3.connect(db.engine.url.database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE customer SET display_name = display_name")
        started = time.monotonic()
        assert returning.customer_id(Identity(world.auth_setting_id, "carol", None)) == carol
        assert returning.backlog(carol, workstream, conversation_id, seq)
        assert time.monotonic() - started < 1
    finally:
        holder.rollback()
        holder.close()
    assert db.session.get(Customer, carol).sub == "carol"
