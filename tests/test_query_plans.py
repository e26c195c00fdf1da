"""The history queries page by index range, never by scanning or sorting, and a message's statements find
their rows by the customer's own keys: checked with the database's own EXPLAIN, on whichever database
the suite runs on."""

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, text

from app import (
    automated_messages,
    clock,
    conversations,
    outbox,
    payloads,
    posting,
    privacy,
    read_state,
    routing,
    timers,
)
from app.console import snapshot
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, OutboxEmail, OutboxWebhook


def plan(statement, **params) -> str:
    """The plan of `statement` as it is sent, its parameters bound (literal_binds would write in what the
    database never sees, and a written-out list may be planned otherwise than a bound one)."""
    if isinstance(statement, str):
        statement = text(statement)
    sent = statement.compile(db.engine).construct_expanded_state(params)
    sqlite = db.engine.dialect.name == "sqlite"
    return explain(sent.statement, sent.positional_parameters if sqlite else sent.parameters)


def explain(sql: str, parameters) -> str:
    connection = db.session.connection()
    if db.engine.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters))
    # A near-empty test table is cheapest to scan; ask what PostgreSQL does when the table is large.
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", parameters))


@pytest.mark.parametrize(
    "cursor", [{"before": 10_000}, {"after": 5_000}, {}], ids=["newest page", "page after a cursor", "first page"]
)
def test_message_pages_are_index_range_scans(ctx, cursor):
    explained = plan(conversations.messages_page_query(1, limit=50, **cursor))
    if db.engine.dialect.name == "sqlite":
        assert "SEARCH message USING" in explained and "(conversation_id=? AND seq" in explained, explained
        assert "TEMP B-TREE" not in explained, explained
    else:
        assert "Index" in explained and "Seq Scan" not in explained and "Sort" not in explained, explained


def test_a_customers_earlier_conversations_are_an_index_range_scan(ctx):
    explained = plan(conversations.customer_conversations_query(1, "w", before=200, limit=20))
    if db.engine.dialect.name == "sqlite":
        assert "ix_conversation_customer_workstream" in explained and "TEMP B-TREE" not in explained, explained
    else:
        assert "ix_conversation_customer_workstream" in explained and "Sort" not in explained, explained


def test_the_previews_of_a_list_are_index_lookups(ctx):
    explained = plan(payloads.last_messages_query([1, 2, 3]))
    if db.engine.dialect.name == "sqlite":
        assert "SCAN message" not in explained and "TEMP B-TREE" not in explained, explained
        assert explained.count("sqlite_autoindex_message_2 (conversation_id=?") == 2, explained
    else:
        assert "Seq Scan on message" not in explained and "uq_message_conversation_id_seq" in explained, explained


def test_an_agents_recently_ended_conversations_are_an_index_range_scan(ctx):
    explained = plan(snapshot.recent_query(1))
    assert "ix_conversation_agent_ended" in explained, explained
    if db.engine.dialect.name == "sqlite":
        assert "TEMP B-TREE" not in explained, explained
    else:
        assert "Sort" not in explained, explained


def test_a_messages_statements_find_the_customers_rows_by_their_keys(ctx):
    """Not by status: a walk of every active conversation grows with the whole team's work, and SQLite's
    planner, which has no statistics, chose one for the current conversation."""
    params = {
        "customer_id": 1,
        "workstream_id": "w",
        "client_id": "c",
        "now": "2026-01-01 00:00:00",
        "locale": None,
        "context": None,
    }
    current = plan(posting._NEXT_SEQ, **params)
    sent_before = plan(posting._SENT_BEFORE, **params)
    assert "ix_conversation_status_agent" not in current and "ix_conversation_retention" not in current, current
    if db.engine.dialect.name == "sqlite":
        assert "uq_conversation_current (customer_id=? AND workstream_id=?)" in current, current
        assert "(customer_id=? AND workstream_id=?)" in sent_before, sent_before
        assert "(conversation_id=? AND client_id=?)" in sent_before, sent_before
    else:
        for explained in (current, sent_before):
            assert "Seq Scan" not in explained, explained


def test_the_ticks_auto_close_reads_only_conversations_in_the_statuses_it_closes(ctx, world):
    """Each rule a range of (workstream, status): the closed history, most of the table, is never read."""
    explained = plan(timers.due_for_closing(clock.now()))
    if db.engine.dialect.name == "sqlite":
        searches = [line for line in explained.splitlines() if "SEARCH conversation" in line]
        assert searches and all("(workstream_id=? AND status=?" in line for line in searches), explained
    else:
        assert "Seq Scan" not in explained, explained


@pytest.mark.parametrize("model", [OutboxEmail, OutboxWebhook], ids=["emails", "webhooks"])
def test_pruning_an_outbox_reads_only_its_old_rows(ctx, model):
    """A month of webhook deliveries is a row per message: the tick's prune must not walk them all."""
    explained = plan(outbox.expired(model, clock.now()))
    assert f"ix_{model.__tablename__}_created_at" in explained, explained


def test_a_customers_current_conversation_is_one_row_of_its_unique_index(ctx):
    """Not a walk of the workstream's current conversations, which persistent chat gathers by the thousand."""
    explained = plan(conversations._CURRENT, customer_id=1, workstream_id="w")
    if db.engine.dialect.name == "sqlite":
        assert "uq_conversation_current (customer_id=? AND workstream_id=?)" in explained, explained
    else:
        assert "Seq Scan" not in explained, explained


def test_the_queues_recent_assignments_are_read_from_their_window_only(ctx):
    """Asked for each new live visitor in the queue: a workstream's history must not be walked for it."""
    explained = plan(automated_messages.recent_assignments("w", clock.now()))
    assert "ix_conversation_event_to_status_created_at" in explained, explained
    if db.engine.dialect.name == "sqlite":
        assert "TEMP B-TREE" not in explained, explained


# Settings tables (workstreams, agents, webhooks) are small: reading them whole is fine.
GROWING = {
    "customer",
    "conversation",
    "message",
    "attachment",
    "outbox_email",
    "outbox_webhook",
    "note",
    "conversation_event",
    "conversation_label",
    "rating",
    "email_opt_out",
}


@contextmanager
def recorded() -> Iterator[list[tuple[str, object]]]:
    """The statements sent meanwhile (through SQLAlchemy: posting's and returning's own are above)."""
    sent: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, _context, _executemany) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE")):
            sent.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def assert_no_growing_table_is_walked(sent: list[tuple[str, object]]) -> None:
    assert len(sent) > 10
    for statement, parameters in sent:
        explained = explain(statement, parameters)
        scanned = set(re.findall(r"(?:SCAN|Seq Scan on) (\w+)", explained))
        assert not scanned & GROWING, (statement, explained)


def test_finding_and_erasing_a_customer_reads_only_their_rows(ctx, world):
    """Erasure and retention delete by conversation and by customer: each table they touch must be
    reached by an index, or every erasure walks the whole outbox, attachments and customers."""
    customer = conversations.customer_for(Identity(world.auth_setting_id, "erin", None, email="erin@example.com"))
    conversations.post_customer_message(world.workstream_id, customer.id, "c1", "Please forget me")
    with recorded() as sent:
        assert [c.id for c in privacy.find(email="erin@example.com")] == [customer.id]
        privacy.erase(customer, None, "test")
    assert_no_growing_table_is_walked(sent)


def test_a_conversations_whole_life_walks_no_table_that_grows(ctx, world):
    """Every step a customer and an agent take, the console's views and the scheduler's tick: with no
    statistics SQLite's planner can pick a walk of every conversation where an index finds the one."""
    workstream_id = world.workstream_id
    ada = db.session.scalar(select(Agent).where(Agent.email == world.agents["ada"][0]))
    routing.set_presence(ada, "available")
    with recorded() as sent:
        customer = conversations.customer_for(Identity(world.auth_setting_id, "uma", None))
        first, _ = conversations.post_customer_message(workstream_id, customer.id, "c1", "Where is my order?")
        conversation_id = first.conversation_id
        routing.accept(ada, conversation_id)
        conversations.post_agent_message(ada, conversation_id, "a1", "Let me look")
        read_state.customer_read(customer.id, workstream_id, conversation_id, 2)
        conversations.backlog(customer.id, workstream_id, conversation_id, 1)
        conversations.backlog(customer.id, workstream_id, None, None)
        snapshot.snapshot(ada)
        conversations.park(ada, conversation_id)
        conversations.post_customer_message(workstream_id, customer.id, "c2", "Any news?")
        conversations.park(ada, conversation_id)
        conversations.resume(ada, conversation_id)
        conversations.end(ada, conversation_id)
        conversations.close_wrap_up(ada, conversation_id)
        conversations.customer_conversations(customer.id, workstream_id, None, 20)
        timers.tick()
    assert_no_growing_table_is_walked(sent)
