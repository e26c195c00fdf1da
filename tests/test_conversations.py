"""The lifecycle functions, driven directly."""

import pytest
from sqlalchemy import func, select

from app import conversations, events, routing
from app.customer_auth import Identity
from app.errors import ChatError
from app.extensions import db
from app.models import Agent, Conversation, ConversationEvent, Customer, Message, Workstream


@pytest.fixture
def parties(world, ctx):
    workstream = db.session.get(Workstream, world.workstream_id)
    customer = conversations.customer_for(Identity(world.auth_setting_id, "alice", "Alice"))
    ada = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
    return workstream, customer, ada


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_first_message_starts_an_open_conversation_when_no_agent_is_available(parties):
    workstream, customer, _ada = parties
    message, created = conversations.post_customer_message(workstream.id, customer.id, "c1", "  Hello  ")
    assert created and message.seq == 1 and message.body == "Hello"
    conversation = db.session.get(Conversation, message.conversation_id)
    assert (conversation.status, conversation.agent_id, conversation.last_seq) == ("open", None, 1)
    assert [(e.from_status, e.to_status, e.actor_kind) for e in db.session.scalars(select(ConversationEvent))] == [
        (None, "open", "customer")
    ]


def test_an_available_agent_gets_the_new_conversation(parties):
    workstream, customer, ada = parties
    routing.set_presence(ada, "available")
    message, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "Hi")
    conversation = db.session.get(Conversation, message.conversation_id)
    assert (conversation.status, conversation.agent_id) == ("active", ada.id)
    transitions = [(e.from_status, e.to_status) for e in db.session.scalars(select(ConversationEvent))]
    assert transitions == [(None, "open"), ("open", "active")]


def test_an_agent_becoming_available_takes_the_queue(parties):
    workstream, customer, ada = parties
    message, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "Anyone?")
    routing.set_presence(ada, "available")
    assert db.session.get(Conversation, message.conversation_id).agent_id == ada.id


def test_a_retried_send_returns_the_stored_message_and_stores_nothing(parties):
    workstream, customer, _ = parties
    first, created = conversations.post_customer_message(workstream.id, customer.id, "c1", "Once")
    again, created_again = conversations.post_customer_message(workstream.id, customer.id, "c1", "Once")
    assert created and not created_again
    assert (again.id, again.seq) == (first.id, first.seq)
    assert count(Message) == 1


def test_sequence_numbers_have_no_gaps_across_both_sides(parties):
    workstream, customer, ada = parties
    routing.set_presence(ada, "available")
    m1, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "one")
    m2, _ = conversations.post_agent_message(ada, m1.conversation_id, "a1", "two")
    m3, _ = conversations.post_customer_message(workstream.id, customer.id, "c2", "three")
    assert [m1.seq, m2.seq, m3.seq] == [1, 2, 3]
    assert m2.sender_kind == "agent" and m2.sender_name == "Ada"


@pytest.mark.parametrize(
    ("client_id", "body", "code"),
    [
        ("c1", "", "empty_message"),
        ("c1", "   \n ", "empty_message"),
        ("c1", "x" * 4001, "message_too_long"),
        ("c1", 42, "invalid_request"),
        ("c1", None, "invalid_request"),
        ("", "hi", "invalid_request"),
        ("x" * 65, "hi", "invalid_request"),
        (None, "hi", "invalid_request"),
    ],
)
def test_bad_messages_are_refused_and_change_nothing(parties, client_id, body, code):
    workstream, customer, _ = parties
    with pytest.raises(ChatError) as refused:
        conversations.post_customer_message(workstream.id, customer.id, client_id, body)
    assert refused.value.code == code
    assert count(Message) == 0 and count(Conversation) == 0


def test_exactly_4000_characters_is_accepted(parties):
    workstream, customer, _ = parties
    message, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "x" * 4000)
    assert len(message.body) == 4000


def test_ending_is_for_the_assigned_agent_and_the_next_message_starts_anew(parties):
    workstream, customer, ada = parties
    bo = db.session.scalar(select(Agent).where(Agent.email == "bo@example.com"))
    routing.set_presence(ada, "available")
    first, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "Hi")
    with pytest.raises(ChatError) as refused:
        conversations.end(bo, first.conversation_id)
    assert refused.value.status == 409
    assert db.session.get(Conversation, first.conversation_id).status == "active"

    ended = conversations.end(ada, first.conversation_id)
    assert ended.status == "wrap_up" and ended.ended_at is not None
    with pytest.raises(ChatError):
        conversations.post_agent_message(ada, first.conversation_id, "a1", "too late")

    second, _ = conversations.post_customer_message(workstream.id, customer.id, "c2", "Back again")
    assert second.conversation_id != first.conversation_id and second.seq == 1


def test_take_succeeds_once(parties):
    workstream, customer, ada = parties
    bo = db.session.scalar(select(Agent).where(Agent.email == "bo@example.com"))
    message, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "Hi")
    routing.take(bo, message.conversation_id)
    with pytest.raises(ChatError) as refused:
        routing.take(ada, message.conversation_id)
    assert refused.value.code == "wrong_state"
    assert db.session.get(Conversation, message.conversation_id).agent_id == bo.id


def test_events_are_published_after_commit_and_never_for_a_refusal(parties):
    workstream, customer, _ = parties
    subscription = events.hub.subscribe([events.customer_channel(customer.id, workstream.id)])
    try:
        with pytest.raises(ChatError):
            conversations.post_customer_message(workstream.id, customer.id, "c1", "")
        assert subscription.get(timeout=0) is None
        conversations.post_customer_message(workstream.id, customer.id, "c1", "Hi")
        frames = [subscription.get(timeout=0), subscription.get(timeout=0)]
        assert '"type":"conversation"' in frames[0] and '"type":"message"' in frames[1]
    finally:
        subscription.close()


def test_one_customer_per_setting_and_sub(parties, world):
    _, customer, _ = parties
    again = conversations.customer_for(Identity(world.auth_setting_id, "alice", None))
    assert again.id == customer.id and again.display_name == "Alice"
    assert count(Customer) == 1


def test_backlog_with_a_cursor_continues_and_includes_newer_conversations(parties):
    workstream, customer, ada = parties
    routing.set_presence(ada, "available")
    m1, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "one")
    conversations.post_agent_message(ada, m1.conversation_id, "a1", "two")
    conversations.end(ada, m1.conversation_id)
    m3, _ = conversations.post_customer_message(workstream.id, customer.id, "c3", "new start")

    reset, entries = conversations.backlog(customer.id, workstream.id, m1.conversation_id, 1)
    assert not reset
    assert [(c.id, [m.seq for m in page]) for c, page, _ in entries] == [
        (m1.conversation_id, [2]),
        (m3.conversation_id, [1]),
    ]


def test_backlog_without_a_cursor_or_with_someone_elses_starts_over(parties, world):
    workstream, customer, _ = parties
    m1, _ = conversations.post_customer_message(workstream.id, customer.id, "c1", "one")
    other = conversations.customer_for(Identity(world.auth_setting_id, "mallory", None))
    for cursor in [(None, None), (m1.conversation_id, 0)]:
        reset, entries = conversations.backlog(other.id, workstream.id, *cursor)
        assert reset and entries == []
    reset, entries = conversations.backlog(customer.id, workstream.id, None, None)
    assert reset and [(c.id, [m.body for m in page], complete) for c, page, complete in entries] == [
        (m1.conversation_id, ["one"], True)
    ]


def test_backlog_far_behind_resets_to_the_last_page(parties, app):
    workstream, customer, _ = parties
    app.config["MESSAGES_PER_CUSTOMER"] = "1000/minute"  # a long conversation, not a flood
    for i in range(conversations.BACKLOG_MAX_MESSAGES + 2):
        m, _ = conversations.post_customer_message(workstream.id, customer.id, f"c{i}", f"m{i}")
    reset, entries = conversations.backlog(customer.id, workstream.id, m.conversation_id, 1)
    assert reset
    ((conversation, page, complete),) = entries
    assert len(page) == conversations.BACKLOG_RESET_PAGE and page[-1].seq == m.seq and not complete


def test_a_visitor_and_a_signed_in_customer_are_found_again_not_made_twice(ctx, world):
    for identity in (Identity(None, "visitor-1", None), Identity(world.auth_setting_id, "signed-in-1", None)):
        first = conversations.customer_for(identity).id
        db.session.remove()
        assert conversations.customer_for(identity).id == first
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 2
