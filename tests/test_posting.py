"""The cheap path for a customer's message in a conversation an agent holds (posting.py): the same rows,
events and webhook deliveries as the general path, batches that keep nothing when one part fails, and,
against a real server where batches form, every message of many concurrent senders stored and delivered
exactly once, in order."""

import json
import threading
import time

import pytest
from sqlalchemy import func, select, update

from app import conversations, events, posting, routing, webhooks
from app.customer_auth import Identity
from app.extensions import db
from app.models import Agent, Conversation, Message, OutboxWebhook, Workstream
from tests.support import HOST_ORIGIN, ChatServer, console_cookie, migrated_app, seed
from tests.test_sockets import Peer, widget


@pytest.fixture
def held(app, world, ctx):
    """A customer's conversation that Ada holds (pick workstream, taken from the queue)."""
    db.session.execute(update(Workstream).values(distribution="pick", capacity_cost=1))
    db.session.commit()
    customer = conversations.customer_for(Identity(world.auth_setting_id, "carol", None))
    first, _ = conversations.post_customer_message(world.workstream_id, customer.id, "c0", "hello")
    ada = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
    routing.take(ada, first.conversation_id)
    db.session.commit()
    return customer.id, first.conversation_id, ada.id


def listen(*channels: str) -> events.Subscription:
    return events.hub.subscribe(channels)


def frames(subscription: events.Subscription) -> list[dict]:
    found = []
    while (frame := subscription.get(timeout=0)) is not None:
        found.append(json.loads(frame))
    return found


def test_a_message_to_the_holding_agent_takes_the_cheap_path_and_is_stored_and_announced(world, held):
    customer_id, conversation_id, agent_id = held
    before = db.session.get(Conversation, conversation_id)
    last_seq, updated = before.last_seq, before.updated_at
    db.session.commit()
    seen = listen(
        events.customer_channel(customer_id, world.workstream_id),
        events.agent_channel(agent_id),
    )
    watching = listen(events.conversation_channel(conversation_id))
    posted = posting.customer_message(world.workstream_id, customer_id, "c1", "Where is my order?", None, "fi")
    assert isinstance(posted, posting.Posted)
    assert (posted.conversation_id, posted.seq) == (conversation_id, last_seq + 1)
    row = db.session.get(Message, posted.id)
    assert (row.seq, row.body, row.client_id, row.sender_kind, row.created_at) == (
        posted.seq,
        "Where is my order?",
        "c1",
        "customer",
        posted.created_at,
    )
    conversation = db.session.get(Conversation, conversation_id)
    db.session.refresh(conversation)
    assert conversation.last_seq == posted.seq and conversation.updated_at > updated and conversation.locale == "fi"
    # Once to a subscription on two of the channels, and to the conversation's watchers.
    for subscription in (seen, watching):
        (event,) = frames(subscription)
        assert event == {
            "type": "message",
            "message": {
                "conversation_id": conversation_id,
                "seq": posted.seq,
                "sender": "customer",
                "sender_name": None,
                "body": "Where is my order?",
                "client_id": "c1",
                "created_at": posted.created_at.isoformat(timespec="microseconds") + "Z",
                "attachments": [],
            },
        }
        subscription.close()


def test_the_cheap_path_writes_the_same_webhook_delivery_as_the_general_one(world, held):
    customer_id, conversation_id, _agent = held
    webhooks.create(world.workstream_id, {"url": "http://receiver.example/hook", "events": ["message.created"]})
    webhooks.create(
        world.workstream_id, {"url": "http://receiver.example/states", "events": ["conversation.status_changed"]}
    )
    posted = posting.customer_message(world.workstream_id, customer_id, "c1", "hi", None, None)
    assert posted is not None
    (delivery,) = db.session.scalars(select(OutboxWebhook).where(OutboxWebhook.event == "message.created"))
    # The general path's delivery of an agent's reply, for the body's shape.
    ada = db.session.get(Agent, held[2])
    conversations.post_agent_message(ada, conversation_id, "a1", "On its way")
    reference = db.session.scalars(select(OutboxWebhook).where(OutboxWebhook.event == "message.created")).all()[-1]
    body, expected = json.loads(delivery.payload), json.loads(reference.payload)
    assert body.keys() == expected.keys() and body["data"].keys() == expected["data"].keys()
    assert body["data"]["message"] == {
        "seq": posted.seq,
        "sender": "customer",
        "sender_name": None,
        "body": "hi",
        "created_at": posted.created_at.isoformat(timespec="microseconds") + "Z",
    }
    assert (delivery.conversation_id, delivery.status, delivery.event_id) == (conversation_id, "pending", body["id"])


@pytest.mark.parametrize(
    "situation",
    ["new conversation", "in the queue", "waiting", "new context", "sent before"],
)
def test_anything_but_a_plain_message_to_the_holding_agent_is_left_to_the_general_path(world, held, situation):
    customer_id, conversation_id, agent_id = held
    context = None
    if situation == "new conversation":
        customer_id = conversations.customer_for(Identity(world.auth_setting_id, "dave", None)).id
    elif situation == "in the queue":
        db.session.execute(update(Conversation).values(agent_id=None, status="open"))
    elif situation == "waiting":
        db.session.execute(update(Conversation).values(status="waiting"))
    elif situation == "new context":
        context = json.dumps({"plan": "gold"})
    db.session.commit()
    client_id = "c0" if situation == "sent before" else "c1"
    count = db.session.scalar(select(func.count()).select_from(Message))
    db.session.commit()
    assert posting.customer_message(world.workstream_id, customer_id, client_id, "hi", context, None) is None
    assert db.session.scalar(select(func.count()).select_from(Message)) == count
    # …which then does what a message does there.
    message, _new = conversations.post_customer_message(
        world.workstream_id, customer_id, client_id, "hi", json.loads(context) if context else None
    )
    assert message.seq >= 1


def test_a_batch_with_a_failing_part_keeps_nothing_and_sends_everyone_to_the_general_path(world, held):
    customer_id, conversation_id, _agent = held
    writer = posting._writer()
    good = posting._Job(world.workstream_id, customer_id, "c1", "first", None, None)
    also = posting._Job(world.workstream_id, customer_id, "c2", "second", None, None)
    # A body the database cannot bind fails the batch halfway, after the first message was written.
    broken = posting._Job(world.workstream_id, customer_id, "c3", object(), None, None)
    seen = listen(events.conversation_channel(conversation_id))
    before = db.session.get(Conversation, conversation_id).last_seq
    db.session.commit()
    writer._write([good, also, broken])
    assert (good.message, also.message, broken.message) == (None, None, None)
    assert db.session.get(Conversation, conversation_id).last_seq == before
    assert db.session.scalar(select(func.count()).select_from(Message).where(Message.client_id.in_(("c1", "c2")))) == 0
    assert frames(seen) == []
    seen.close()
    db.session.commit()
    writer._write([good, also])
    assert (good.message.seq, also.message.seq) == (before + 1, before + 2)


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("posting")
    app = migrated_app(instance, MESSAGES_PER_CUSTOMER="100000/minute")
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        db.session.execute(update(Workstream).values(distribution="pick", capacity_cost=1))
        db.session.execute(update(Agent).values(capacity=1000))
        db.session.commit()
        db.engine.dispose()
    limits = {"MESSAGES_PER_CUSTOMER": "100000/minute", "FRAMES_PER_SOCKET": "100000/minute"}
    running = ChatServer(instance, limits).start()
    running.world, running.app = world, app
    yield running
    running.stop()


def test_concurrent_senders_each_get_every_message_stored_once_in_order_and_delivered(team_server):
    """Twenty customers each send fifty messages as fast as their acks come back (so the server's batches
    hold several at once); every ack is a distinct, gap-free seq of the sender's conversation, the agent's
    console receives each message exactly once and in order, and the database holds exactly these."""
    server, world = team_server, team_server.world
    email, password = world.agents["ada"]
    cookie = console_cookie(server.url, email, password)
    customers, per_customer = 20, 50
    peers = []
    for i in range(customers):
        peer, _welcome, _backlog = widget(server, f"batch-{i}")
        peer.send({"type": "send", "client_id": "first", "body": "hello"})
        peers.append((peer, peer.recv_until("ack")["conversation_id"]))
    with team_server.app.app_context():
        ada = db.session.scalar(select(Agent).where(Agent.email == email))
        for _peer, conversation_id in peers:
            routing.take(ada, conversation_id)
        db.session.commit()
        db.engine.dispose()
    console = Peer(server.url.replace("http", "ws") + "/console/ws", server.url, {"Cookie": cookie})
    delivered: dict[int, list[int]] = {conversation_id: [] for _peer, conversation_id in peers}
    expected = customers * per_customer

    def read_console() -> None:
        deadline = time.monotonic() + 60
        while sum(map(len, delivered.values())) < expected and time.monotonic() < deadline:
            frame = console.recv()
            if frame["type"] == "message" and frame["message"]["body"].startswith("m"):
                delivered[frame["message"]["conversation_id"]].append(frame["message"]["seq"])

    reader = threading.Thread(target=read_console)
    reader.start()
    acks: dict[int, list[int]] = {}

    def send_all(peer: Peer, conversation_id: int) -> None:
        window = 4
        sent = received = 0
        while received < per_customer:
            while sent < per_customer and sent - received < window:
                peer.send({"type": "send", "client_id": f"m{sent}", "body": f"m{sent}"})
                sent += 1
            frame = peer.recv()
            if frame["type"] == "ack":
                acks.setdefault(conversation_id, []).append(frame["seq"])
                received += 1

    senders = [threading.Thread(target=send_all, args=pair) for pair in peers]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(120)
    reader.join(60)
    for _peer, conversation_id in peers:
        first_seq = min(acks[conversation_id])
        assert sorted(acks[conversation_id]) == list(range(first_seq, first_seq + per_customer))
        assert delivered[conversation_id] == sorted(acks[conversation_id])
    with team_server.app.app_context():
        stored = db.session.execute(
            select(Message.conversation_id, func.count(), func.count(func.distinct(Message.seq)))
            .where(Message.body.like("m%"))
            .group_by(Message.conversation_id)
        ).all()
        db.engine.dispose()
    assert sorted(stored) == sorted((cid, per_customer, per_customer) for _peer, cid in peers)
    for peer, _cid in peers:
        peer.close()
    console.close()
