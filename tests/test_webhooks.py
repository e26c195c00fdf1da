"""Webhooks through the outbox, delivered to real HTTP receivers on free ports: signatures, order per
conversation, retries with backoff (a failing receiver, one that times out), 410 Gone, redelivery,
registration through the admin API and the CLI."""

import hashlib
import hmac
import json
import re
import shutil
import subprocess
from datetime import UTC, timedelta

import pytest
from sqlalchemy import func, select

from app import ROOT, clock, conversations, csat, customer_auth, lifecycle, outbox, routing, timers, webhooks
from app.agents import add_agent
from app.extensions import db
from app.models import Agent, Conversation, Customer, OutboxWebhook, Webhook, Workstream
from tests.receiver import Receiver
from tests.support import Clock


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def time_(ctx):
    return Clock()


@pytest.fixture
def admin(app, client):
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    return client


def register(world, receiver, path="/hook", events=webhooks.EVENTS) -> Webhook:
    return webhooks.create(world.workstream_id, {"url": receiver.url + path, "events": list(events)})


def ada() -> Agent:
    agent = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
    routing.seen(agent.id)
    routing.set_presence(agent, "available")
    return agent


def customer_says(world, body: str, client_id: str, sub: str = "alice") -> Conversation:
    someone = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, sub, sub.title()))
    message, _ = conversations.post_customer_message(world.workstream_id, someone.id, client_id, body)
    return db.session.get(Conversation, message.conversation_id)


def verified(received, secret: str, now) -> dict:
    """What a receiver does: recompute the signature over the raw body, refuse a stale timestamp."""
    fields = dict(part.split("=", 1) for part in received.headers["Chat-Signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + received.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    assert abs(int(fields["t"]) - now.replace(tzinfo=UTC).timestamp()) < 300
    return json.loads(received.body)


def deliveries(webhook: Webhook) -> list[OutboxWebhook]:
    db.session.expire_all()
    return db.session.scalars(
        select(OutboxWebhook).where(OutboxWebhook.webhook_id == webhook.id).order_by(OutboxWebhook.id)
    ).all()


def test_a_conversation_s_events_arrive_signed_and_in_order_through_the_scheduler(world, receiver, time_):
    everything = register(world, receiver)
    only_messages = register(world, receiver, "/messages", ["message.created"])
    agent = ada()
    conversation = customer_says(world, "Where is my order?", "c1")
    conversations.post_agent_message(agent, conversation.id, "a1", "On its way.")
    conversations.end(agent, conversation.id)
    db.session.commit()

    assert timers.tick(clock.now())["webhooks_delivered"] == 3 + 2 + 2
    bodies = [verified(r, everything.secret, time_.now) for r in receiver.at("/hook")]
    assert [b["type"] for b in bodies] == [
        "conversation.started",
        "message.created",
        "conversation.status_changed",  # assigned to Ada
        "message.created",
        "conversation.status_changed",  # ended
    ]
    started, first, assigned, reply, ended = bodies
    assert started["data"]["conversation"]["customer"]["sub"] == "alice"
    assert started["data"]["conversation"]["status"] == "open"
    assert first["data"]["message"] == {
        "seq": 1,
        "sender": "customer",
        "sender_name": None,
        "body": "Where is my order?",
        "created_at": first["data"]["message"]["created_at"],
    }
    assert (assigned["data"]["from_status"], assigned["data"]["conversation"]["status"]) == ("open", "active")
    assert assigned["data"]["conversation"]["agent"]["name"] == "Ada"
    assert reply["data"]["message"]["sender"] == "agent" and reply["data"]["message"]["body"] == "On its way."
    assert (ended["data"]["from_status"], ended["data"]["conversation"]["status"], ended["data"]["actor"]) == (
        "active",
        "wrap_up",
        "agent",
    )
    assert receiver.at("/hook")[0].headers["Chat-Event"] == "conversation.started"
    assert receiver.at("/hook")[0].headers["Chat-Event-Id"] == started["id"]

    messages = [verified(r, only_messages.secret, time_.now) for r in receiver.at("/messages")]
    assert [m["data"]["message"]["body"] for m in messages] == ["Where is my order?", "On its way."]
    # One event, one id, whichever webhook hears it.
    assert messages[0]["id"] == first["id"]
    assert all(d.status == "sent" and d.response_code == 200 for d in deliveries(everything))
    assert timers.tick(clock.now())["webhooks_delivered"] == 0


def test_a_customer_s_rating_is_sent_as_rating_given(world, receiver, time_):
    ratings = register(world, receiver, "/ratings", ["rating.given"])
    agent = ada()
    conversation = customer_says(world, "My parcel is lost", "c1")
    conversations.post_agent_message(agent, conversation.id, "a1", "Found it: it arrives tomorrow.")
    conversations.end(agent, conversation.id)
    alice = db.session.get(Customer, conversation.customer_id)
    workstream = db.session.get(Workstream, world.workstream_id)
    webhooks.deliver(clock.now())
    assert receiver.at("/ratings") == []

    csat.rate(alice, workstream, conversation.id, 5, "  Quick and kind.  ")
    # A second device rating the same conversation is refused, and sends nothing.
    with pytest.raises(Exception, match="rated already"):
        csat.rate(alice, workstream, conversation.id, 1, None)
    assert webhooks.deliver(clock.now()) == 1
    [received] = receiver.at("/ratings")
    body = verified(received, ratings.secret, time_.now)
    assert received.headers["Chat-Event"] == "rating.given"
    assert body["type"] == "rating.given"
    assert body["data"]["rating"] == {"score": 5, "comment": "Quick and kind.", "created_at": body["created_at"]}
    assert body["data"]["conversation"]["id"] == conversation.id
    assert body["data"]["conversation"]["status"] == "wrap_up"
    assert body["data"]["conversation"]["agent"]["name"] == "Ada"
    assert body["data"]["conversation"]["customer"]["sub"] == "alice"
    assert [d.event for d in deliveries(ratings)] == ["rating.given"]


def test_a_wrong_secret_does_not_verify(world, receiver, time_):
    register(world, receiver, events=["message.created"])
    customer_says(world, "Hello", "c1")
    webhooks.deliver(clock.now())
    [received] = receiver.at("/hook")
    with pytest.raises(AssertionError):
        verified(received, "whsec_not-the-secret", time_.now)


def test_a_failing_receiver_is_retried_with_backoff_and_holds_back_only_its_own_later_events(world, receiver, time_):
    receiver.answers["/down"] = 500
    down = register(world, receiver, "/down", ["message.created"])
    register(world, receiver, "/up", ["message.created"])
    conversation = customer_says(world, "first", "c1")

    assert webhooks.deliver(clock.now()) == 1  # /up only
    [first] = deliveries(down)
    assert (first.status, first.attempts, first.response_code, first.last_error) == ("pending", 1, 500, "HTTP 500")
    assert first.next_attempt_at == time_.now + timedelta(seconds=outbox.BACKOFF_SECONDS[0])

    # A later message of the same conversation waits behind the one being retried.
    customer_says(world, "second", "c2")
    time_.advance(seconds=30)
    assert webhooks.deliver(clock.now()) == 1
    assert [json.loads(r.body)["data"]["message"]["body"] for r in receiver.at("/down")] == ["first"]
    assert [json.loads(r.body)["data"]["message"]["body"] for r in receiver.at("/up")] == ["first", "second"]

    # Still failing at the first retry: the next wait is longer.
    time_.advance(seconds=30)
    webhooks.deliver(clock.now())
    assert len(receiver.at("/down")) == 2
    assert deliveries(down)[0].next_attempt_at == time_.now + timedelta(seconds=outbox.BACKOFF_SECONDS[1])
    time_.advance(seconds=outbox.BACKOFF_SECONDS[1] - 1)
    webhooks.deliver(clock.now())
    assert len(receiver.at("/down")) == 2

    receiver.answers["/down"] = 204
    time_.advance(seconds=1)
    assert webhooks.deliver(clock.now()) == 2
    bodies = [json.loads(r.body)["data"]["message"]["body"] for r in receiver.at("/down")]
    assert bodies == ["first", "first", "first", "second"]
    assert [(d.status, d.attempts, d.response_code) for d in deliveries(down)] == [("sent", 3, 204), ("sent", 1, 204)]
    assert conversation.id == deliveries(down)[1].conversation_id


def test_a_receiver_that_keeps_failing_is_given_up_after_the_last_attempt(world, receiver, time_):
    receiver.answers["/hook"] = 503
    webhook = register(world, receiver, events=["message.created"])
    customer_says(world, "Hello", "c1")
    for wait in (0, *outbox.BACKOFF_SECONDS):
        time_.advance(seconds=wait)
        webhooks.deliver(clock.now())
    [row] = deliveries(webhook)
    assert (row.status, row.attempts, row.last_error) == ("failed", outbox.MAX_ATTEMPTS, "HTTP 503")
    assert len(receiver.at("/hook")) == outbox.MAX_ATTEMPTS
    time_.advance(days=1)
    webhooks.deliver(clock.now())
    assert len(receiver.at("/hook")) == outbox.MAX_ATTEMPTS
    # The webhook stays on: a new event goes out.
    customer_says(world, "Again", "c2")
    receiver.answers["/hook"] = 200
    assert webhooks.deliver(clock.now()) == 1


def test_a_receiver_that_does_not_answer_in_time_counts_as_a_failed_attempt(app, world, receiver, time_):
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 0.5
    receiver.answers["/slow"] = "slow"
    webhook = register(world, receiver, "/slow", ["message.created"])
    customer_says(world, "Hello", "c1")
    assert webhooks.deliver(clock.now()) == 0
    [row] = deliveries(webhook)
    assert (row.status, row.attempts, row.response_code) == ("pending", 1, None)
    assert row.last_error == "No answer within 0.5 s."
    assert row.next_attempt_at == time_.now + timedelta(seconds=outbox.BACKOFF_SECONDS[0])


def test_a_receiver_answering_something_else_than_http_is_retried_then_given_up(world, receiver, time_):
    receiver.answers["/odd"] = "garbage"
    webhook = register(world, receiver, "/odd", ["message.created"])
    customer_says(world, "Hello", "c1")
    assert webhooks.deliver(clock.now()) == 0
    [row] = deliveries(webhook)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "Sending failed (see the server's log).")
    for wait in outbox.BACKOFF_SECONDS:
        time_.advance(seconds=wait)
        webhooks.deliver(clock.now())
    [row] = deliveries(webhook)
    assert (row.status, row.attempts) == ("failed", outbox.MAX_ATTEMPTS)


def test_an_unreachable_receiver_is_retried(world, time_):
    webhook = webhooks.create(world.workstream_id, {"url": "http://127.0.0.1:9/hook", "events": ["message.created"]})
    customer_says(world, "Hello", "c1")
    assert webhooks.deliver(clock.now()) == 0
    [row] = deliveries(webhook)
    assert row.status == "pending" and row.last_error.startswith("Could not connect")


def test_410_gone_switches_the_webhook_off(world, receiver, time_):
    receiver.answers["/gone"] = 410
    gone = register(world, receiver, "/gone", ["message.created"])
    customer_says(world, "first", "c1")
    customer_says(world, "second", "c2")
    webhooks.deliver(clock.now())
    assert len(receiver.at("/gone")) == 1
    db.session.expire_all()
    assert gone.active is False and gone.disabled_reason == "The receiver answered 410 Gone."
    assert [(d.status, d.response_code) for d in deliveries(gone)] == [("failed", 410), ("pending", None)]
    time_.advance(hours=5)
    customer_says(world, "third", "c3")
    webhooks.deliver(clock.now())
    assert len(receiver.at("/gone")) == 1
    assert len(deliveries(gone)) == 2  # nothing is queued for a webhook that is off


def test_a_rolled_back_change_queues_nothing(world, receiver, time_):
    register(world, receiver, events=["message.created"])
    someone = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, "alice", "Alice"))
    conversations.post_customer_message(world.workstream_id, someone.id, "c1", "kept")
    conversation = conversations.current_conversation(someone.id, world.workstream_id)
    lifecycle.append_message(conversation, "customer", "rolled back", "c2")
    db.session.rollback()
    webhooks.deliver(clock.now())
    assert [json.loads(r.body)["data"]["message"]["body"] for r in receiver.at("/hook")] == ["kept"]


def test_admin_api_registers_lists_shows_deliveries_and_redelivers(app, admin, world, receiver, time_):
    response = admin.post(
        f"/admin/api/workstreams/{world.workstream_id}/webhooks",
        json={"url": receiver.url + "/crm", "events": ["message.created", "conversation.started"]},
    )
    assert response.status_code == 201, response.json
    created = response.json["webhook"]
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["conversation.started", "message.created"] and created["active"] is True
    listed = admin.get(f"/admin/api/workstreams/{world.workstream_id}/webhooks").json["webhooks"]
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]

    receiver.answers["/crm"] = 500
    customer_says(world, "Hello", "c1")
    webhooks.deliver(clock.now())
    shown = admin.get(f"/admin/api/webhooks/{created['id']}/deliveries").json["deliveries"]
    assert [(d["event"], d["status"], d["response_code"], d["attempts"]) for d in shown] == [
        ("message.created", "pending", None, 0),
        ("conversation.started", "pending", 500, 1),
    ]

    # Given up, then fixed on the receiver's side: the admin sends it again, with the same event id.
    receiver.answers["/crm"] = 200
    failed = shown[1]
    db.session.get(OutboxWebhook, failed["id"]).status = "failed"
    db.session.commit()
    again = admin.post(f"/admin/api/webhooks/{created['id']}/deliveries/{failed['id']}/redeliver")
    assert again.status_code == 201
    assert again.json["delivery"]["event_id"] == failed["event_id"] and again.json["delivery"]["status"] == "pending"
    webhooks.deliver(clock.now())
    received = [json.loads(r.body) for r in receiver.at("/crm")]
    assert [r["id"] for r in received][-2:] == [shown[0]["event_id"], failed["event_id"]]
    assert received[-1] == received[0]

    off = admin.patch(f"/admin/api/webhooks/{created['id']}", json={"active": False}).json["webhook"]
    assert off["active"] is False and off["disabled_reason"] == "Switched off by an admin."
    on = admin.patch(f"/admin/api/webhooks/{created['id']}", json={"active": True, "events": ["message.created"]})
    assert on.json["webhook"]["disabled_reason"] is None and on.json["webhook"]["events"] == ["message.created"]
    assert admin.delete(f"/admin/api/webhooks/{created['id']}").status_code == 204
    assert admin.get(f"/admin/api/webhooks/{created['id']}").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(OutboxWebhook)) == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"events": ["message.created"]},
        {"url": "ftp://crm.example/hook", "events": ["message.created"]},
        {"url": "https://", "events": ["message.created"]},
        {"url": "https://crm.example:99999/hook", "events": ["message.created"]},
        {"url": "https://crm.example/hook", "events": []},
        {"url": "https://crm.example/hook", "events": ["rating.changed"]},
        {"url": "https://crm.example/hook", "events": "message.created"},
        {"url": "https://crm.example/hook", "events": ["message.created"], "secret": "mine"},
        {"url": "https://crm.example/" + "x" * 2000, "events": ["message.created"]},
    ],
)
def test_admin_api_refuses_a_bad_webhook(admin, world, payload):
    response = admin.post(f"/admin/api/workstreams/{world.workstream_id}/webhooks", json=payload)
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_webhook", response.json


def test_admin_api_refusals(app, admin, client, world):
    assert admin.post("/admin/api/workstreams/nope/webhooks", json={}).status_code == 404
    assert admin.post(f"/admin/api/workstreams/{world.workstream_id}/webhooks", data="x").status_code == 400
    assert admin.patch("/admin/api/webhooks/999", json={}).status_code == 404
    assert admin.post("/admin/api/webhooks/999/deliveries/1/redeliver").status_code == 404
    with app.app_context():
        webhook = webhooks.create(world.workstream_id, {"url": "https://crm.example/", "events": ["message.created"]})
        webhook_id = webhook.id
    assert admin.patch(f"/admin/api/webhooks/{webhook_id}", json={"active": "yes"}).status_code == 400
    assert admin.post(f"/admin/api/webhooks/{webhook_id}/deliveries/1/redeliver").status_code == 404
    email, password = world.agents["ada"]
    agent_client = app.test_client()
    agent_client.post("/console/login", data={"email": email, "password": password})
    assert agent_client.get(f"/admin/api/webhooks/{webhook_id}").status_code == 403


def test_cli_creates_lists_and_redelivers(app, world, receiver):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-webhook", world.workstream_id, receiver.url + "/cli", "--event", "message.created"]
    )
    assert result.exit_code == 0, result.output
    secret = result.output.split("Signing secret: ")[1].strip()
    with app.app_context():
        webhook = db.session.scalar(select(Webhook))
        assert webhook.secret == secret
        webhook_id = webhook.id
        customer_says(world, "Hello", "c1")
        webhooks.deliver(clock.now())
        delivery_id = db.session.scalar(select(OutboxWebhook.id))
    listed = runner.invoke(args=["list-webhooks", world.workstream_id])
    assert f"{webhook_id}\t{world.workstream_id}\ton\tmessage.created\t{receiver.url}/cli" in listed.output
    shown = runner.invoke(args=["webhook-deliveries", str(webhook_id)])
    assert f"{delivery_id}\tmessage.created\tsent\t1\t200" in shown.output
    again = runner.invoke(args=["redeliver-webhook", str(webhook_id), str(delivery_id)])
    assert again.exit_code == 0 and "Queued delivery" in again.output
    bad = runner.invoke(args=["create-webhook", world.workstream_id, "ftp://x", "--event", "message.created"])
    assert bad.exit_code == 1 and "http or https" in bad.output
    assert runner.invoke(args=["webhook-deliveries", "999"]).exit_code == 1


def test_the_readme_s_signature_example_and_verifiers_hold():
    """What the README tells receivers is what the server does: its example header is the server's
    signature, and its Python and Node.js verifiers accept it and refuse a wrong secret."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    header = re.search(r"Chat-Signature: (t=\d+,v1=[0-9a-f]{64})", readme).group(1)
    secret = re.search(r"with the secret `(whsec_\w+)`", readme).group(1)
    body = re.search(r"and the body\s+`(\{[^`]+\})`", readme).group(1).encode()
    timestamp = int(re.search(r"t=(\d+)", header).group(1))
    assert webhooks.sign(secret, timestamp, body) == header

    python = re.search(r"```python\n(import hashlib.*?)```", readme, re.S).group(1)
    scope: dict = {}
    exec(python, scope)  # noqa: S102 - the README's own example
    assert scope["verify"](secret, header, body, tolerance=10**12)
    assert not scope["verify"](secret + "x", header, body, tolerance=10**12)
    assert not scope["verify"](secret, header, body)  # the example is long past five minutes

    javascript = re.search(r"```javascript\n(.*?)```", readme, re.S).group(1)
    node = shutil.which("node")
    assert node, "Node.js runs the README's JavaScript example (make test installs it for axe-core too)"
    check = f"""{javascript}
const body = Buffer.from({json.dumps(body.decode())});
console.log(JSON.stringify([
  verify({json.dumps(secret)}, {json.dumps(header)}, body, 1e12),
  verify({json.dumps(secret + "x")}, {json.dumps(header)}, body, 1e12),
  verify({json.dumps(secret)}, {json.dumps(header)}, body),
]));"""
    out = subprocess.run([node, "-e", check], capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out) == [True, False, False]
