"""Bot first, then a person: a workstream's bot hears new conversations through its webhook (a real
HTTP receiver here, the test doing what the bot's code would), answers and hands over through the
server API; a bot that fails or stays silent is handed over from by the scheduler; the bot is set
through the admin API and the CLI."""

import hashlib
import hmac
import json

import pytest
from sqlalchemy import select, update

from app import api_keys, bots, clock, conversations, customer_auth, outbox, payloads, routing, timers, webhooks
from app import workstreams as workstream_settings
from app.agents import add_agent
from app.extensions import db
from app.models import Agent, ApiKey, AuditEntry, Conversation, ConversationEvent, Webhook, Workstream
from tests.receiver import Receiver
from tests.support import Clock

BOT_EVENTS = ["conversation.started", "message.created", "conversation.status_changed"]


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
        add_agent("root@example.com", "Root", "admin", "admin-password", capacity=0)
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    return client


class TheBot:
    """The bot's side: its webhook's secret and its API key."""

    def __init__(self, webhook: Webhook, key: str):
        self.webhook_id = webhook.id
        self.secret = webhook.secret
        self.key = key

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"}


def a_bot(world, receiver, answer_seconds: int = 30, events=BOT_EVENTS) -> TheBot:
    webhook = webhooks.create(world.workstream_id, {"url": receiver.url + "/bot", "events": events})
    row, key = api_keys.create({"name": "Shop bot", "workstream_ids": [world.workstream_id]})
    workstream = db.session.get(Workstream, world.workstream_id)
    bot = {"name": "Botti", "webhook_id": webhook.id, "api_key_id": row.id, "answer_seconds": answer_seconds}
    workstream_settings.update(workstream, {"bot": bot})
    return TheBot(webhook, key)


def available(name: str) -> Agent:
    agent = db.session.scalar(select(Agent).where(Agent.name == name))
    routing.seen(agent.id)
    routing.set_presence(agent, "available")
    return agent


def customer_says(world, body: str, client_id: str, sub: str = "alice") -> Conversation:
    someone = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, sub, sub.title()))
    message, _ = conversations.post_customer_message(world.workstream_id, someone.id, client_id, body)
    conversation = db.session.get(Conversation, message.conversation_id)
    db.session.refresh(conversation)
    return conversation


def heard(receiver, bot: TheBot) -> list[dict]:
    """What reached the bot's webhook, each signature checked as the bot does."""
    found = []
    for r in receiver.at("/bot"):
        fields = dict(part.split("=", 1) for part in r.headers["Chat-Signature"].split(","))
        expected = hmac.new(bot.secret.encode(), fields["t"].encode() + b"." + r.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(expected, fields["v1"])
        found.append(json.loads(r.body))
    return found


def status_of(conversation_id: int) -> Conversation:
    db.session.expire_all()
    return db.session.get(Conversation, conversation_id)


def history(conversation_id: int) -> list[tuple[str, str | None, str]]:
    return [(m.sender_kind, m.sender_name, m.body) for m in conversations.messages_page(conversation_id)]


def changes(conversation_id: int) -> list[tuple[str | None, str, str]]:
    return [
        (e.from_status, e.to_status, e.actor_kind)
        for e in db.session.scalars(
            select(ConversationEvent)
            .where(ConversationEvent.conversation_id == conversation_id)
            .order_by(ConversationEvent.id)
        )
    ]


def test_the_bot_answers_first_then_hands_over_to_an_agent_who_sees_its_part(client, world, receiver, time_):
    bot = a_bot(world, receiver)
    ada = available("Ada")
    conversation = customer_says(world, "Where is my order 1234?", "c1")
    # Nobody is offered it, though Ada is free: the bot has it.
    assert (conversation.status, conversation.agent_id) == ("bot", None)
    widget = payloads.widget_conversation(conversation)
    assert widget["agent_name"] == "Botti" and widget["status"] == "bot"

    timers.tick(clock.now())
    started, first = heard(receiver, bot)
    assert started["type"] == "conversation.started" and started["data"]["conversation"]["status"] == "bot"
    assert first["type"] == "message.created"
    assert first["data"]["conversation"] == {
        "id": conversation.id,
        "workstream_id": world.workstream_id,
        "status": "bot",
    }
    assert first["data"]["message"]["body"] == "Where is my order 1234?"

    path = f"/api/server/conversations/{conversation.id}"
    answer = {"sender": "bot", "client_id": first["id"], "body": "It left the warehouse today."}
    sent = client.post(path + "/messages", headers=bot.headers(), json=answer)
    assert sent.status_code == 201, sent.json
    assert (sent.json["message"]["sender"], sent.json["message"]["sender_name"]) == ("bot", "Botti")
    # The webhook delivered the same event twice: the bot's retry changes nothing.
    again = client.post(path + "/messages", headers=bot.headers(), json=answer)
    assert again.status_code == 200 and again.json["message"]["seq"] == sent.json["message"]["seq"]

    customer_says(world, "Thanks, but I want to talk to a person", "c2")
    timers.tick(clock.now())
    asked = heard(receiver, bot)[-1]
    assert asked["data"]["message"]["body"] == "Thanks, but I want to talk to a person"
    handed = client.post(path + "/handover", headers=bot.headers())
    assert handed.status_code == 200, handed.json
    # Normal routing ran at once: Ada, who is free, has it.
    assert handed.json["conversation"]["status"] == "active"
    assert handed.json["conversation"]["agent"]["name"] == "Ada"
    assert changes(conversation.id) == [(None, "bot", "customer"), ("bot", "open", "bot"), ("open", "active", "system")]

    # Ada sees what the customer and the bot said, and answers.
    assert history(conversation.id)[:3] == [
        ("customer", None, "Where is my order 1234?"),
        ("bot", "Botti", "It left the warehouse today."),
        ("customer", None, "Thanks, but I want to talk to a person"),
    ]
    conversations.post_agent_message(ada, conversation.id, "a1", "Hi, Ada here. Let me look.")
    assert payloads.widget_conversation(status_of(conversation.id))["agent_name"] == "Ada"

    # The bot is done: it cannot answer or hand over again, and it hears that the conversation moved on.
    late = client.post(path + "/messages", headers=bot.headers(), json={**answer, "client_id": "late"})
    assert late.status_code == 409 and late.json["error"]["code"] == "wrong_state"
    assert client.post(path + "/handover", headers=bot.headers()).status_code == 409
    timers.tick(clock.now())
    moved = [e for e in heard(receiver, bot) if e["type"] == "conversation.status_changed"]
    assert [(e["data"]["from_status"], e["data"]["conversation"]["status"], e["data"]["actor"]) for e in moved] == [
        ("bot", "open", "bot"),
        ("open", "active", "system"),
    ]
    said_by_ada = [e for e in heard(receiver, bot) if e["type"] == "message.created"][-1]
    assert said_by_ada["data"]["conversation"]["status"] == "active"


def test_a_conversation_with_the_bot_is_not_in_the_queue_until_handed_over(app, client, world, receiver, time_):
    bot = a_bot(world, receiver)
    conversation = customer_says(world, "Hello?", "c1")
    email, password = world.agents["bo"]
    console = app.test_client()
    console.post("/console/login", data={"email": email, "password": password})
    db.session.execute(update(Agent).values(presence="away"))
    db.session.commit()
    assert console.get("/console/api/conversations").json["queue"] == []
    # Nobody is in: handed over, it waits in the queue.
    client.post(f"/api/server/conversations/{conversation.id}/handover", headers=bot.headers())
    [queued] = console.get("/console/api/conversations").json["queue"]
    assert (queued["id"], queued["status"], queued["agent"]) == (conversation.id, "open", None)
    assert queued["last_message"]["body"] == "Hello?"


def test_a_silent_bot_is_handed_over_from_after_its_answer_time(world, receiver, time_):
    a_bot(world, receiver, answer_seconds=30)
    available("Ada")
    conversation = customer_says(world, "Hello?", "c1")
    time_.advance(seconds=29)
    assert timers.tick(clock.now())["handed_over"] == 0
    assert status_of(conversation.id).status == "bot"
    time_.advance(seconds=1)
    assert timers.tick(clock.now())["handed_over"] == 1
    assert status_of(conversation.id).status == "active"
    assert changes(conversation.id)[1:] == [("bot", "open", "system"), ("open", "active", "system")]


def test_the_answer_time_runs_from_the_customer_s_first_unanswered_message(client, world, receiver, time_):
    bot = a_bot(world, receiver, answer_seconds=30)
    conversation = customer_says(world, "Hello?", "c1")
    time_.advance(seconds=20)
    post = {"sender": "bot", "client_id": "b1", "body": "Hi! What can I do for you?"}
    client.post(f"/api/server/conversations/{conversation.id}/messages", headers=bot.headers(), json=post)
    # Answered: no deadline while the customer thinks, however long.
    time_.advance(hours=2)
    timers.tick(clock.now())
    assert status_of(conversation.id).status == "bot"
    customer_says(world, "My parcel", "c2")
    time_.advance(seconds=15)
    customer_says(world, "It is late", "c3")
    time_.advance(seconds=15)
    timers.tick(clock.now())
    assert status_of(conversation.id).status == "open"


def test_a_bot_whose_webhook_is_given_up_on_is_handed_over_from(monkeypatch, world, receiver, time_):
    monkeypatch.setattr(outbox, "BACKOFF_SECONDS", (1,))
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)
    receiver.answers["/bot"] = 500
    a_bot(world, receiver, answer_seconds=bots.MAX_ANSWER_SECONDS)
    conversation = customer_says(world, "Hello?", "c1")
    timers.tick(clock.now())
    assert status_of(conversation.id).status == "bot"
    time_.advance(seconds=1)
    timers.tick(clock.now())  # the second attempt fails too: given up
    assert status_of(conversation.id).status == "bot"
    timers.tick(clock.now())
    assert status_of(conversation.id).status == "open"
    assert changes(conversation.id)[-1] == ("bot", "open", "system")


def test_a_bot_whose_receiver_is_gone_is_handed_over_from_at_once(world, receiver, time_):
    receiver.answers["/bot"] = 410
    a_bot(world, receiver, answer_seconds=bots.MAX_ANSWER_SECONDS)
    conversation = customer_says(world, "Hello?", "c1")
    timers.tick(clock.now())  # 410 Gone switches the webhook off
    timers.tick(clock.now())
    assert status_of(conversation.id).status == "open"
    # A bot that cannot hear gets no new conversations.
    other = customer_says(world, "Me too", "b1", sub="bob")
    assert other.status == "open"


def test_a_revoked_bot_key_or_a_removed_bot_hands_its_conversations_over(world, receiver, time_):
    a_bot(world, receiver, answer_seconds=bots.MAX_ANSWER_SECONDS)
    first = customer_says(world, "Hello?", "c1")
    api_keys.revoke(db.session.scalar(select(ApiKey)))
    timers.tick(clock.now())
    assert status_of(first.id).status == "open"

    second_receiver_bot = a_bot(world, receiver, answer_seconds=bots.MAX_ANSWER_SECONDS)
    assert second_receiver_bot.key
    second = customer_says(world, "Hello?", "b1", sub="bob")
    assert second.status == "bot"
    workstream_settings.update(db.session.get(Workstream, world.workstream_id), {"bot": None})
    timers.tick(clock.now())
    assert status_of(second.id).status == "open"


def test_a_live_visitor_may_end_a_chat_with_the_bot_and_it_closes_when_left_alone(client, world, receiver, time_):
    bot = a_bot(world, receiver)
    conversation = customer_says(world, "Hello?", "c1")
    client.post(
        f"/api/server/conversations/{conversation.id}/messages",
        headers=bot.headers(),
        json={"sender": "bot", "client_id": "b1", "body": "Hi! Your order ships today."},
    )
    # Persistent: the bot's conversation closes after the workstream's time without activity.
    time_.advance(days=31)
    timers.tick(clock.now())
    assert status_of(conversation.id).status == "closed"

    live = workstream_settings.create(
        {"name": "Live", "mode": "live", "allowed_origins": [], "auth_setting_id": world.auth_setting_id}
    )
    webhook = webhooks.create(live.id, {"url": receiver.url + "/live", "events": ["message.created"]})
    row, _key = api_keys.create({"name": "Live bot", "workstream_ids": [live.id]})
    workstream_settings.update(live, {"bot": {"name": "Botti", "webhook_id": webhook.id, "api_key_id": row.id}})
    visitor = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, "carol", "Carol"))
    message, _ = conversations.post_customer_message(live.id, visitor.id, "v1", "Just looking")
    ended = conversations.end_by_customer(visitor, live, message.conversation_id)
    assert ended.status == "closed"


def test_only_the_bot_s_own_key_answers_as_the_bot(client, world, receiver, time_):
    bot = a_bot(world, receiver)
    conversation = customer_says(world, "Hello?", "c1")
    _row, other_key = api_keys.create({"name": "CRM", "workstream_ids": [world.workstream_id]})
    path = f"/api/server/conversations/{conversation.id}"
    post = {"sender": "bot", "client_id": "b1", "body": "Hi"}
    for url, body in ((path + "/messages", post), (path + "/handover", None)):
        refused = client.post(url, headers={"Authorization": f"Bearer {other_key}"}, json=body)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "not_the_bot"
    assert client.post(path + "/handover").status_code == 401
    assert client.post("/api/server/conversations/999/handover", headers=bot.headers()).status_code == 404
    assert status_of(conversation.id).status == "bot" and conversation.last_seq == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"sender": "robot", "client_id": "b1", "body": "Hi"}, "invalid_request"),
        ({"sender": "bot", "body": "Hi"}, "invalid_request"),
        ({"sender": "bot", "client_id": "b1", "body": "   "}, "empty_message"),
        ({"sender": "bot", "client_id": "b1", "body": 7}, "invalid_request"),
        ({"sender": "bot", "client_id": "b1", "body": "x" * 20_000}, "message_too_long"),
    ],
)
def test_a_bot_s_bad_message_is_refused_and_changes_nothing(client, world, receiver, time_, payload, code):
    bot = a_bot(world, receiver)
    conversation = customer_says(world, "Hello?", "c1")
    refused = client.post(f"/api/server/conversations/{conversation.id}/messages", headers=bot.headers(), json=payload)
    assert refused.status_code == 400 and refused.json["error"]["code"] == code, refused.json
    assert status_of(conversation.id).last_seq == 1


def test_the_admin_api_sets_and_removes_the_bot_and_refuses_a_bad_one(app, admin, world, receiver, time_):
    path = f"/admin/api/workstreams/{world.workstream_id}"
    hook = admin.post(path + "/webhooks", json={"url": receiver.url + "/bot", "events": ["message.created"]})
    deaf = admin.post(path + "/webhooks", json={"url": receiver.url + "/x", "events": ["conversation.started"]})
    key = admin.post("/admin/api/api-keys", json={"name": "Bot", "workstream_ids": [world.workstream_id]})
    other = workstream_settings.create(
        {"name": "Other", "mode": "persistent", "auth_setting_id": world.auth_setting_id, "allowed_origins": []}
    )
    elsewhere_key = admin.post("/admin/api/api-keys", json={"name": "Else", "workstream_ids": [other.id]})
    elsewhere_hook = admin.post(
        f"/admin/api/workstreams/{other.id}/webhooks", json={"url": receiver.url + "/e", "events": ["message.created"]}
    )
    hook_id, key_id = hook.json["webhook"]["id"], key.json["api_key"]["id"]
    good = {"name": "Botti", "webhook_id": hook_id, "api_key_id": key_id}
    for bad, words in [
        ({**good, "name": " "}, "bot.name"),
        ({**good, "webhook_id": deaf.json["webhook"]["id"]}, "must listen to message.created"),
        ({**good, "webhook_id": elsewhere_hook.json["webhook"]["id"]}, "one of this workstream's webhooks"),
        ({**good, "webhook_id": "1"}, "one of this workstream's webhooks"),
        ({**good, "api_key_id": elsewhere_key.json["api_key"]["id"]}, "bot.api_key_id"),
        ({**good, "api_key_id": 999}, "bot.api_key_id"),
        ({**good, "answer_seconds": 4}, "bot.answer_seconds"),
        ({**good, "answer_seconds": True}, "bot.answer_seconds"),
        ({**good, "avatar": "x"}, "Unknown bot fields: avatar"),
        ("Botti", "bot must be"),
    ]:
        refused = admin.patch(path, json={"bot": bad})
        assert refused.status_code == 400 and words in refused.json["error"]["message"], (bad, refused.json)
        [shown] = [w for w in admin.get("/admin/api/workstreams").json["workstreams"] if w["name"] == "Support"]
        assert shown["bot"] is None

    saved = admin.patch(path, json={"bot": good})
    assert saved.status_code == 200, saved.json
    assert saved.json["workstream"]["bot"] == {**good, "answer_seconds": bots.DEFAULT_ANSWER_SECONDS}
    # The bot's webhook keeps hearing the customer, and is not deleted from under it.
    deaf_now = admin.patch(f"/admin/api/webhooks/{hook_id}", json={"events": ["conversation.started"]})
    assert deaf_now.status_code == 409 and deaf_now.json["error"]["code"] == "bot_webhook"
    assert admin.delete(f"/admin/api/webhooks/{hook_id}").status_code == 409
    assert admin.patch(path, json={"bot": None}).json["workstream"]["bot"] is None
    assert admin.delete(f"/admin/api/webhooks/{hook_id}").status_code == 204
    with app.app_context():
        logged = db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "workstream.update").order_by(AuditEntry.id)
        ).all()
        bot_changes = [json.loads(e.changes)["bot"] for e in logged]
    assert bot_changes == [[None, {**good, "answer_seconds": 60}], [{**good, "answer_seconds": 60}, None]]


def test_the_cli_sets_and_removes_the_bot(app, world, receiver):
    runner = app.test_cli_runner()
    with app.app_context():
        webhook = webhooks.create(world.workstream_id, {"url": receiver.url + "/bot", "events": ["message.created"]})
        row, _key = api_keys.create({"name": "Bot", "workstream_ids": [world.workstream_id]})
        webhook_id, key_id = webhook.id, row.id
    args = ["set-bot", world.workstream_id, "--name", "Botti", "--webhook", str(webhook_id)]
    result = runner.invoke(args=[*args, "--api-key", str(key_id), "--answer-seconds", "45"])
    assert result.exit_code == 0, result.output
    assert "Botti answers new conversations of Support first." in result.output
    with app.app_context():
        workstream = db.session.get(Workstream, world.workstream_id)
        assert bots.describe(workstream) == {
            "name": "Botti",
            "webhook_id": webhook_id,
            "api_key_id": key_id,
            "answer_seconds": 45,
        }
    bad = runner.invoke(args=[*args, "--api-key", "999"])
    assert bad.exit_code == 1 and "bot.api_key_id must be an API key" in bad.output
    assert runner.invoke(args=["set-bot", "nope", "--name", "B", "--webhook", "1", "--api-key", "1"]).exit_code == 1
    removed = runner.invoke(args=["remove-bot", world.workstream_id])
    assert removed.exit_code == 0 and "Support has no bot." in removed.output
    with app.app_context():
        assert bots.describe(db.session.get(Workstream, world.workstream_id)) is None
