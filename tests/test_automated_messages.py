"""Automated messages: queue position, wait time, next in line, agent joined/ended, closed, no agent;
per-workstream switches and per-language texts; persistent workstreams never get the queue messages."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import automated_messages, clock, conversations, routing, timers, workstreams
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, Conversation, Message, Workstream
from tests.support import HOST_ORIGIN, Clock

T0 = Clock.START  # a Monday


@pytest.fixture
def time(app):
    return Clock()


@pytest.fixture
def agents(world, ctx):
    return {key: db.session.scalar(select(Agent).where(Agent.email == f"{key}@example.com")) for key in ("ada", "bo")}


def live_workstream(**settings) -> Workstream:
    return workstreams.create({"name": "Live help", "mode": "live", "allowed_origins": [HOST_ORIGIN], **settings})


@pytest.fixture
def live(world, ctx, time):
    return live_workstream()


def say(world, ws: Workstream, sub: str, body: str = "hello", locale: str | None = None, **context) -> Conversation:
    customer = conversations.customer_for(Identity(world.auth_setting_id, sub, None))
    message, _ = conversations.post_customer_message(
        ws.id, customer.id, f"{sub}-{body}-{clock.now()}", body, context or None, locale
    )
    return db.session.get(Conversation, message.conversation_id)


def automated(conversation: Conversation) -> list[str]:
    return list(
        db.session.scalars(
            select(Message.body)
            .where(Message.conversation_id == conversation.id, Message.sender_kind == "system")
            .order_by(Message.seq)
        )
    )


def test_queued_visitors_hear_their_position_change_at_most_every_ten_seconds(world, live, agents, time):
    first, second, third = (say(world, live, sub) for sub in ("v1", "v2", "v3"))
    assert automated(third) == [
        "You are number 3 in the queue for Live help.",
        "No one is available to answer right now. Stay in the chat and we will answer as soon as we can.",
    ]
    assert automated(first)[-1] == "You are next in line."

    ada = agents["ada"]
    routing.set_presence(ada, "busy")
    routing.take(ada, first.id)
    # Just told: the change waits for the ten seconds to pass.
    assert automated(third)[-1].startswith("No one is available")
    time.advance(seconds=9)
    routing.take(ada, second.id)
    timers.tick()
    assert automated(third)[-1].startswith("No one is available")
    time.advance(seconds=1)
    timers.tick()
    # 3 → 1 straight away: the customer is told where they are now, not every step in between.
    assert automated(third)[-2:] == ["You are number 1 in the queue for Live help.", "You are next in line."]
    timers.tick()
    assert len(automated(third)) == 4


def test_the_wait_time_is_the_mean_of_recent_queue_times_rounded_and_localized(world, live, agents, time):
    ada = agents["ada"]
    routing.set_presence(ada, "busy")
    for sub, waited in (("w1", 120), ("w2", 240)):
        conversation = say(world, live, sub)
        time.advance(seconds=waited)
        routing.take(ada, conversation.id)
        conversations.end(ada, conversation.id)
        conversations.close_wrap_up(ada, conversation.id)
    english = say(world, live, "w3")
    finnish = say(world, live, "w4", locale="fi-FI")
    assert "The average wait is about 3 minutes." in automated(english)
    assert "Keskimääräinen odotusaika on noin 3 minuuttia." in automated(finnish)
    assert "Olet jonossa sijalla 2 (Live help)." in automated(finnish)


@pytest.mark.parametrize(
    ("seconds", "en", "fi"),
    [
        (20, "less than a minute", "alle minuutti"),
        (80, "about a minute", "noin minuutti"),
        (44 * 60, "about 44 minutes", "noin 44 minuuttia"),
        (70 * 60, "about an hour", "noin tunti"),
        (150 * 60, "about 3 hours", "noin 3 tuntia"),
    ],
)
def test_durations_read_naturally(seconds, en, fi):
    wait = timedelta(seconds=seconds)
    assert (automated_messages.duration(wait, "en-GB"), automated_messages.duration(wait, "fi")) == (en, fi)


def test_persistent_workstreams_never_send_queue_messages(world, ctx, time):
    persistent = db.session.get(Workstream, world.workstream_id)
    workstreams.update(
        persistent,
        {"automated_messages": {"position": {"enabled": True}, "agent_joined": {"enabled": True}}},
    )
    conversation = say(world, persistent, "alice")
    say(world, persistent, "bob")
    timers.tick()
    assert automated(conversation) == []
    ada = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
    routing.take(ada, conversation.id)
    assert automated(conversation) == ["Ada joined the chat."]


def test_texts_are_overridden_per_language_and_kinds_switched_off(world, ctx, time):
    ws = live_workstream(
        automated_messages={
            "position": {"texts": {"fi": "Jonossa palveluun {QueueName}: paikka {Position}, {name}. {unknown}"}},
            "no_agent": {"enabled": False},
        }
    )
    finnish = say(world, ws, "v1", locale="fi", name="Aino")
    english = say(world, ws, "v2", locale="en")
    assert automated(finnish) == ["Jonossa palveluun Live help: paikka 1, Aino. {unknown}", "Olet seuraavana vuorossa."]
    assert automated(english) == ["You are number 2 in the queue for Live help."]


def test_agents_joining_and_ending_are_announced_and_abandoned_chats_close(world, live, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    pushed = say(world, live, "v1")
    routing.set_presence(ada, "available")
    assert db.session.get(Conversation, pushed.id).agent_id == ada.id
    assert automated(pushed)[-1] != "Ada joined the chat."  # offered, not yet accepted
    conversations.post_agent_message(ada, pushed.id, "a1", "Hello!")
    assert automated(pushed)[-1] == "Ada joined the chat."
    routing.set_presence(bo, "busy")
    routing.transfer(ada, pushed.id, bo.id)
    routing.accept(bo, pushed.id)
    assert automated(pushed)[-1] == "Bo joined the chat."
    conversations.end(bo, pushed.id)
    assert automated(pushed)[-1] == "Bo ended the chat."
    conversations.close_wrap_up(bo, pushed.id)
    assert automated(pushed)[-1] == "Bo ended the chat."  # the customer already saw it end

    routing.set_presence(ada, "offline")
    abandoned = say(world, live, "v2")
    told = len(automated(abandoned))
    # Position messages are not activity: the twenty minutes count from the visitor's last message.
    time.advance(minutes=15)
    timers.tick()
    time.advance(minutes=5, seconds=1)
    timers.tick()
    assert db.session.get(Conversation, abandoned.id).status == "closed"
    assert automated(abandoned)[told:] == ["This chat has been closed."]


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ([], "object keyed by message kind"),
        ({"posiiton": {"enabled": False}}, "Unknown automated message kind(s): posiiton"),
        ({"position": {"enabled": "no"}}, "enabled must be true or false"),
        ({"position": {"colour": "red"}}, '"enabled" and/or "texts"'),
        ({"position": {"texts": {"Finnish": "x"}}}, "is not a language code"),
        ({"position": {"texts": {"fi": ""}}}, "1 to 1000 characters"),
        ({"position": {"texts": {"fi": "x" * 1001}}}, "1 to 1000 characters"),
        ({"position": {"texts": ["x"]}}, "must map language codes"),
    ],
)
def test_bad_settings_are_refused_and_change_nothing(world, ctx, setting, complaint):
    ws = live_workstream(automated_messages={"closed": {"enabled": False}})
    with pytest.raises(Exception) as refused:
        workstreams.update(ws, {"automated_messages": setting, "name": "Renamed"})
    assert refused.value.status == 400 and complaint in refused.value.message
    db.session.expire_all()
    kept = db.session.get(Workstream, ws.id)
    assert kept.name == "Live help" and json.loads(kept.automated_messages) == {"closed": {"enabled": False}}


def test_a_bad_locale_is_refused(world, live):
    customer = conversations.customer_for(Identity(world.auth_setting_id, "v1", None))
    with pytest.raises(Exception) as refused:
        conversations.post_customer_message(live.id, customer.id, "c1", "hi", None, "<script>")
    assert refused.value.status == 400 and "locale" in refused.value.message
    assert db.session.scalar(select(Conversation).where(Conversation.customer_id == customer.id)) is None


def test_a_live_chat_whose_visitor_left_after_the_answer_closes_but_a_waiting_visitor_is_kept(
    world, live, agents, time
):
    ada = agents["ada"]
    routing.set_presence(ada, "busy")
    answered, unanswered = say(world, live, "gone"), say(world, live, "waiting")
    for conversation in (answered, unanswered):
        routing.take(ada, conversation.id)
    conversations.post_agent_message(ada, answered.id, "a1", "Anything else?")
    time.advance(minutes=20, seconds=1)
    timers.tick()
    assert db.session.get(Conversation, answered.id).status == "closed"
    assert automated(answered)[-1] == "This chat has been closed."
    assert db.session.get(Conversation, unanswered.id).status == "active"


def test_out_of_hours_and_holiday_notices_follow_the_workstream_and_language(world, ctx, time):
    ws = live_workstream(
        automated_messages={"holiday": {"texts": {"fi": "Hyvää itsenäisyyspäivää! {QueueName} on kiinni."}}}
    )
    assert automated_messages.closed_notice(ws, T0, False, "fi") == "Chat on nyt suljettu."
    assert automated_messages.closed_notice(ws, T0, True, "fi") == "Hyvää itsenäisyyspäivää! Live help on kiinni."
    assert automated_messages.closed_notice(ws, T0, True, "sv") == "The chat is closed today for a holiday."
    persistent = db.session.get(Workstream, world.workstream_id)
    assert automated_messages.closed_notice(persistent, T0, False, "fi") is None
