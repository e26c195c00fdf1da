"""Work distribution: capacity, presence, push and pick, offers, the waiting state, affinity, fallback,
transfer, operating hours and the timers, driven through the lifecycle functions with a moved clock."""

import json
import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from app import capacity, clock, conversations, events, routing, timers, workstreams
from app.agents import add_agent
from app.customer_auth import Identity
from app.errors import ChatError
from app.extensions import db
from app.models import Agent, Conversation, ConversationEvent, Workstream
from tests.support import Clock

T0 = Clock.START  # a Monday


@pytest.fixture
def time(app):
    return Clock()


@pytest.fixture
def ws(world, ctx, time):
    return db.session.get(Workstream, world.workstream_id)


@pytest.fixture
def agents(world, ctx):
    return {key: db.session.scalar(select(Agent).where(Agent.email == f"{key}@example.com")) for key in ("ada", "bo")}


def customer(world, sub: str):
    return conversations.customer_for(Identity(world.auth_setting_id, sub, None))


def say(world, ws, sub: str, body: str = "hello") -> Conversation:
    message, _ = conversations.post_customer_message(
        ws.id, customer(world, sub).id, f"{sub}-{body}-{clock.now()}", body
    )
    return db.session.get(Conversation, message.conversation_id)


def used(agent: Agent) -> int:
    return capacity.loads(clock.now(), [agent.id]).get(agent.id, capacity.Load()).units


def test_capacity_caps_pushes_and_waiting_costs_nothing(world, ws, agents):
    ada = agents["ada"]
    routing.set_presence(ada, "available")
    first, second, third = (say(world, ws, sub) for sub in ("c1", "c2", "c3"))
    assert [c.agent_id for c in (first, second)] == [ada.id, ada.id]
    assert (third.status, third.agent_id) == ("open", None)  # 3 x 34 > 100
    assert used(ada) == 68

    conversations.park(ada, first.id)
    db.session.refresh(third)
    assert (first.status, third.status, third.agent_id) == ("waiting", "active", ada.id)
    assert used(ada) == 68


def test_most_free_capacity_first(world, ws, agents):
    ada, bo = agents["ada"], agents["bo"]
    bo.capacity = 200
    for agent in (ada, bo):
        routing.set_presence(agent, "available")
    # bo has 200, 166, 132, then 98 free against ada's 100.
    assert [say(world, ws, f"c{i}").agent_id for i in range(4)] == [bo.id, bo.id, bo.id, ada.id]


def test_equal_free_capacity_goes_to_the_agent_idle_longest(world, ws, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    for agent in (ada, bo):
        routing.set_presence(agent, "available")
    first = say(world, ws, "c1")
    conversations.park(db.session.get(Agent, first.agent_id), first.id)
    time.advance(minutes=1)
    # Both are empty again; the one who got work most recently waits.
    assert say(world, ws, "c2").agent_id != first.agent_id


def test_only_allowed_presences_get_pushed_work(world, ws, agents):
    ada = agents["ada"]
    routing.set_presence(ada, "busy")
    conversation = say(world, ws, "c1")
    assert conversation.agent_id is None
    workstreams.update(ws, {"allowed_presences": ["available", "busy"]})
    routing.dispatch()
    db.session.refresh(conversation)
    assert conversation.agent_id == ada.id


def test_presence_is_validated(agents, ws):
    with pytest.raises(ChatError) as refused:
        routing.set_presence(agents["ada"], "inactive")
    assert refused.value.code == "invalid_request"


def test_pick_workstreams_wait_in_the_queue_until_taken(world, ws, agents):
    ada = agents["ada"]
    ws.distribution = "pick"
    db.session.commit()
    routing.set_presence(ada, "available")
    first, second, third = (say(world, ws, sub) for sub in ("c1", "c2", "c3"))
    assert {c.agent_id for c in (first, second, third)} == {None}
    routing.take(ada, first.id)
    assert (first.status, first.agent_id, first.offer_expires_at) == ("active", ada.id, None)
    routing.take(ada, second.id)
    with pytest.raises(ChatError) as refused:
        routing.take(ada, third.id)  # 3 x 34 > 100
    assert refused.value.code == "over_capacity"
    assert (third.status, third.agent_id) == ("open", None)


def test_an_unaccepted_offer_returns_to_the_queue_and_the_agent_becomes_inactive(world, ws, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    routing.set_presence(ada, "available")
    conversation = say(world, ws, "c1")
    assert conversation.agent_id == ada.id and conversation.offer_expires_at == T0 + timedelta(seconds=120)
    routing.set_presence(bo, "available")
    routing.seen(ada.id)
    routing.seen(bo.id)
    time.advance(seconds=121)
    routing.seen(bo.id)
    routing.seen(ada.id)
    assert timers.tick()["offers_expired"] == 1
    db.session.refresh(conversation)
    assert ada.presence == "inactive"
    assert (conversation.status, conversation.agent_id) == ("active", bo.id)


def test_replying_accepts_the_offer(world, ws, agents, time):
    ada = agents["ada"]
    routing.set_presence(ada, "available")
    conversation = say(world, ws, "c1")
    conversations.post_agent_message(ada, conversation.id, "a1", "Hi!")
    assert conversation.offer_expires_at is None
    time.advance(minutes=5)
    routing.seen(ada.id)
    assert timers.tick()["offers_expired"] == 0


def test_parking_is_for_persistent_conversations_only(world, ws, agents, app):
    ada = agents["ada"]
    live = workstreams.create({"name": "Live", "mode": "live", "auth_setting_id": world.auth_setting_id})
    routing.set_presence(ada, "available")
    conversation = say(world, live, "c1")
    with pytest.raises(ChatError) as refused:
        conversations.park(ada, conversation.id)
    assert refused.value.code == "not_persistent"
    assert conversation.status == "active"


def test_a_returning_customer_goes_straight_back_to_the_same_agent_over_capacity(world, ws, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    routing.set_presence(ada, "available")
    parked = say(world, ws, "returning")
    conversations.post_agent_message(ada, parked.id, "a1", "Anything else?")
    conversations.park(ada, parked.id)
    say(world, ws, "c2")
    say(world, ws, "c3")
    routing.set_presence(ada, "away")
    routing.set_presence(bo, "available")
    subscription = events.hub.subscribe([events.agent_channel(ada.id)])
    time.advance(days=1)
    try:
        back = say(world, ws, "returning", "I'm back")
        assert back.id == parked.id
        assert (back.status, back.agent_id) == ("active", ada.id)
        assert used(ada) == 102  # over 100 %: affinity, shown, never hidden
        frames = [json.loads(f) for f in iter(lambda: subscription.get(timeout=0), None)]
        assert any(
            f["type"] == "notify" and f["kind"] == "returned" and f["conversation"]["id"] == back.id for f in frames
        )
    finally:
        subscription.close()
    transitions = db.session.execute(
        select(ConversationEvent.from_status, ConversationEvent.to_status)
        .where(ConversationEvent.conversation_id == parked.id)
        .order_by(ConversationEvent.id)
    ).all()
    assert transitions[-3:] == [("active", "waiting"), ("waiting", "open"), ("open", "active")]


def test_fallback_sends_a_returning_customer_to_the_queue_when_the_agent_is_long_offline(world, ws, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    workstreams.update(ws, {"fallback_offline_minutes": 15})
    routing.set_presence(ada, "available")
    parked = say(world, ws, "returning")
    conversations.park(ada, parked.id)
    routing.set_presence(ada, "offline")
    routing.set_presence(bo, "available")
    time.advance(minutes=16)
    back = say(world, ws, "returning", "hello again")
    assert (back.status, back.agent_id) == ("active", bo.id)


def test_without_fallback_the_customer_waits_for_the_sticky_agent(world, ws, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    routing.set_presence(ada, "available")
    parked = say(world, ws, "returning")
    conversations.park(ada, parked.id)
    routing.set_presence(ada, "offline")
    routing.set_presence(bo, "available")
    time.advance(days=2)
    assert say(world, ws, "returning", "hello again").agent_id == ada.id


def test_stranded_customers_are_requeued_once_the_agent_is_offline_for_the_fallback_time(world, ws, agents, time):
    ada, bo = agents["ada"], agents["bo"]
    workstreams.update(ws, {"fallback_offline_minutes": 10})
    routing.set_presence(ada, "available")
    conversation = say(world, ws, "c1")
    conversations.post_agent_message(ada, conversation.id, "a1", "Looking into it")
    say(world, ws, "c1", "any news?")
    routing.set_presence(ada, "offline")
    time.advance(minutes=5)
    routing.seen(bo.id)
    routing.set_presence(bo, "available")
    assert timers.tick()["requeued"] == 0
    time.advance(minutes=6)
    routing.seen(bo.id)
    assert timers.tick()["requeued"] == 1
    db.session.refresh(conversation)
    assert conversation.agent_id == bo.id


def test_transfer_to_another_agent_or_back_to_the_queue(world, ws, agents):
    ada, bo = agents["ada"], agents["bo"]
    routing.set_presence(ada, "available")
    conversation = say(world, ws, "c1")
    with pytest.raises(ChatError) as refused:
        routing.transfer(ada, conversation.id, bo.id)
    assert refused.value.code == "agent_unavailable" and conversation.agent_id == ada.id
    routing.set_presence(bo, "busy")
    routing.transfer(ada, conversation.id, bo.id)
    assert (conversation.agent_id, conversation.status) == (bo.id, "active")
    assert conversation.offer_expires_at is not None
    with pytest.raises(ChatError):
        routing.transfer(ada, conversation.id, None)  # no longer ada's
    routing.set_presence(ada, "away")
    routing.set_presence(bo, "available")
    routing.transfer(bo, conversation.id, None)
    # Bo let it go: the queue does not push it back to him, not on the next tick either.
    assert (conversation.agent_id, conversation.status) == (None, "open")
    assert timers.tick()["assigned"] == 0
    db.session.refresh(conversation)
    assert (conversation.agent_id, conversation.status) == (None, "open")
    for bad in (bo.id, "x", True, 10**6):
        with pytest.raises(ChatError):
            routing.transfer(bo, conversation.id, bad)
    # It is for someone else: the first colleague in goes first.
    routing.set_presence(ada, "available")
    db.session.refresh(conversation)
    assert (conversation.agent_id, conversation.status) == (ada.id, "active")


def test_who_let_a_conversation_go_can_still_take_it_and_routing_then_forgets(world, ws, agents, time):
    bo = agents["bo"]
    routing.set_presence(bo, "available")
    conversation = say(world, ws, "c1")
    routing.transfer(bo, conversation.id, None)
    assert conversation.released_by_id == bo.id
    routing.take(bo, conversation.id)
    assert (conversation.agent_id, conversation.released_by_id) == (bo.id, None)
    conversations.end(bo, conversation.id)
    conversations.close_wrap_up(bo, conversation.id)
    # An offer that ran out is not letting go: back from inactive, Bo is offered it again.
    offered = say(world, ws, "c2")
    assert offered.agent_id == bo.id and offered.offer_expires_at is not None
    time.advance(seconds=121)
    routing.seen(bo.id)
    assert timers.tick()["offers_expired"] == 1
    db.session.refresh(offered)
    assert (offered.agent_id, offered.released_by_id, bo.presence) == (None, None, "inactive")
    routing.set_presence(bo, "available")
    db.session.refresh(offered)
    assert (offered.status, offered.agent_id) == ("active", bo.id)


@pytest.mark.parametrize(("rule", "held_after_1h"), [("always", 34), ("never", 0), (7200, 34), (1800, 0)])
def test_wrap_up_holds_capacity_as_the_workstream_says(world, ws, agents, time, rule, held_after_1h):
    ada = agents["ada"]
    workstreams.update(ws, {"wrap_up_capacity": rule})
    routing.set_presence(ada, "available")
    conversation = say(world, ws, "c1")
    conversations.end(ada, conversation.id)
    time.advance(hours=1)
    assert used(ada) == held_after_1h
    conversations.close_wrap_up(ada, conversation.id)
    assert used(ada) == 0 and conversation.status == "closed"


def test_auto_close_defaults_for_persistent_and_live(world, ws, agents, time):
    ada = agents["ada"]
    live = workstreams.create({"name": "Live", "mode": "live", "auth_setting_id": world.auth_setting_id})
    routing.set_presence(ada, "available")
    ended = say(world, ws, "ended")
    conversations.end(ada, ended.id)
    waiting = say(world, ws, "waiting")
    conversations.park(ada, waiting.id)
    routing.set_presence(ada, "away")
    still_open = say(world, ws, "still-open")
    live_open = say(world, live, "visitor")
    assert [c.status for c in (ended, waiting, still_open, live_open)] == ["wrap_up", "waiting", "open", "open"]

    time.advance(minutes=21)
    timers.tick()
    assert [c.status for c in (ended, waiting, still_open, live_open)] == ["wrap_up", "waiting", "open", "closed"]
    time.advance(days=1)
    timers.tick()
    assert [c.status for c in (ended, waiting, still_open)] == ["closed", "waiting", "open"]
    time.advance(days=29)
    timers.tick()
    assert [c.status for c in (waiting, still_open)] == ["closed", "closed"]


def test_agents_whose_consoles_are_gone_become_offline_after_the_grace_period(agents, time, ws):
    ada = agents["ada"]
    routing.set_presence(ada, "available")
    routing.seen(ada.id)
    time.advance(seconds=60)
    assert timers.tick()["agents_offline"] == 0
    time.advance(seconds=31)
    assert timers.tick()["agents_offline"] >= 1
    assert ada.presence == "offline"


def test_outside_operating_hours_a_persistent_conversation_waits_and_is_routed_when_hours_begin(
    world, ws, agents, time
):
    ada = agents["ada"]
    workstreams.update(
        ws,
        {
            "hours": {
                "timezone": "Europe/Helsinki",
                "weekly": {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]},
            }
        },
    )
    time.now = datetime(2026, 11, 23, 16, 30)  # Monday 18:30 in Helsinki: closed
    routing.set_presence(ada, "available")
    conversation = say(world, ws, "late")
    assert (conversation.status, conversation.agent_id) == ("open", None)
    assert routing.opens_at(ws, clock.now()) == datetime(2026, 11, 24, 7, 0)
    time.now = datetime(2026, 11, 24, 7, 0, 1)
    routing.seen(ada.id)
    assert timers.tick()["assigned"] == 1
    assert conversation.agent_id == ada.id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "P", "affinity": False}, "affinity must be on"),
        ({"name": "P", "auth_setting_id": None}, "needs an authentication setting"),
        ({"name": "P", "allowed_presences": ["offline"]}, "allowed_presences"),
        ({"name": "P", "capacity_cost": 0}, "capacity_cost"),
        ({"name": "P", "wrap_up_capacity": "sometimes"}, "wrap_up_capacity"),
        ({"name": "P", "allowed_origins": ["shop.example"]}, "not an origin"),
        ({"name": "P", "hours": {"timezone": "Mars/Olympus"}}, ""),
        ({"name": "P", "mode": "chatty"}, "mode"),
        ({"name": "P", "colour": "red"}, "Unknown fields"),
    ],
)
def test_bad_workstreams_are_refused_and_nothing_is_saved(world, ctx, data, message):
    before = db.session.scalar(select(func.count()).select_from(Workstream))
    payload = {"auth_setting_id": world.auth_setting_id, **data}
    with pytest.raises(ChatError) as refused:
        workstreams.create(payload)
    assert refused.value.status == 400 and message in refused.value.message
    assert db.session.scalar(select(func.count()).select_from(Workstream)) == before


def test_distribution_is_fixed_at_creation(ws):
    with pytest.raises(ChatError):
        workstreams.update(ws, {"distribution": "pick"})
    with pytest.raises(ChatError):
        workstreams.update(ws, {"affinity": False})
    db.session.refresh(ws)
    assert (ws.distribution, ws.affinity) == ("push", True)


def test_concurrent_routing_never_double_assigns_or_overfills(app, world):
    """Many threads, each with its own connection, push and pick at once on one database."""
    with app.app_context():
        ws = db.session.get(Workstream, world.workstream_id)
        # Everyone is offline while the queue fills, so nothing is assigned before the race starts.
        staff = [add_agent(f"agent{i}@example.com", f"Agent {i}", "agent", "a long password")[0] for i in range(4)]
        for i in range(40):
            conversations.post_customer_message(ws.id, customer(world, f"crowd{i}").id, f"k{i}", "hi")
        queued = [c.id for c in db.session.scalars(select(Conversation).where(Conversation.status == "open"))]
        assert len(queued) == 40
        for agent in staff:
            agent.presence = "available"
        db.session.commit()
        staff_ids = [a.id for a in staff]
        ws_id = ws.id

    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with app.app_context():
                for i, conversation_id in enumerate(queued):
                    if (i + n) % 3 == 0:
                        routing.dispatch()
                    else:
                        agent = db.session.get(Agent, staff_ids[(i + n) % len(staff_ids)])
                        try:
                            routing.take(agent, conversation_id)
                        except ChatError:
                            db.session.rollback()
                db.session.remove()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with app.app_context():
        assignments = db.session.execute(
            select(ConversationEvent.conversation_id, func.count())
            .where(ConversationEvent.from_status == "open", ConversationEvent.to_status == "active")
            .group_by(ConversationEvent.conversation_id)
        ).all()
        assert all(n == 1 for _cid, n in assignments), "a conversation was assigned twice"
        for agent in db.session.scalars(select(Agent)):
            load = capacity.loads(clock.now(), [agent.id]).get(agent.id, capacity.Load())
            assert load.units <= agent.capacity, f"{agent.name} over capacity: {load.units}"
        active = db.session.scalar(
            select(func.count()).where(Conversation.status == "active", Conversation.workstream_id == ws_id)
        )
        assert active == len(assignments)


def test_only_one_process_at_a_time_runs_the_timers(app):
    with app.app_context(), timers.leadership() as first, timers.leadership() as second:
        assert (first, second) == (True, False)
    with app.app_context(), timers.leadership() as again:
        assert again is True


def test_live_chats_do_not_start_outside_hours(world, ws, agents, time):
    live = workstreams.create(
        {
            "name": "Live",
            "mode": "live",
            "auth_setting_id": world.auth_setting_id,
            "hours": {"timezone": "UTC", "weekly": {"sun": [["00:00", "01:00"]]}},
        }
    )
    with pytest.raises(ChatError) as refused:
        say(world, live, "visitor")
    assert refused.value.code == "outside_hours"
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 0
