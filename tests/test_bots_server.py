"""The bot against the real server (gunicorn, gevent worker, its own scheduler): a bot of the site's on a
real HTTP server hears the customer through its signed webhook and answers through the server API; it
hands over when asked for a person; when it is down, the scheduler hands over for it."""

import json
import time
import urllib.request

import pytest

from app import api_keys, webhooks, workstreams
from app.extensions import db
from app.models import Workstream
from tests import bot as shop_bot
from tests.support import HOST_ORIGIN, ChatServer, migrated_app, seed


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    instance = tmp_path_factory.mktemp("bots")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN])
    server = ChatServer(
        instance,
        {"SCHEDULER_INTERVAL": "0.2", "PERSISTENT_CHAT_CLOCK_OFFSET_FILE": str(instance / "clock_offset")},
    )
    bot = shop_bot.Bot(server.url).start()
    with app.app_context():
        webhook = webhooks.create(world.workstream_id, {"url": bot.url, "events": ["message.created"]})
        row, bot.key = api_keys.create({"name": "Shop bot", "workstream_ids": [world.workstream_id]})
        bot.secret = webhook.secret
        settings = {"name": "Botti", "webhook_id": webhook.id, "api_key_id": row.id, "answer_seconds": 20}
        workstreams.update(db.session.get(Workstream, world.workstream_id), {"bot": settings})
        db.engine.dispose()
    server.start()
    yield server, world, bot
    server.stop()
    bot.stop()


def customer_says(server, world, sub: str, client_id: str, body: str) -> int:
    request = urllib.request.Request(
        f"{server.url}/api/widget/workstreams/{world.workstream_id}/messages",
        data=json.dumps({"client_id": client_id, "body": body}).encode(),
        headers={
            "Authorization": f"Bearer {world.token(sub)}",
            "Origin": HOST_ORIGIN,
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["message"]["conversation_id"]


def read(server, bot, path: str) -> dict:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {bot.key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def conversation(server, bot, conversation_id: int) -> dict:
    return read(server, bot, f"/api/server/conversations/{conversation_id}")["conversation"]


def eventually(check, timeout: float = 20.0):
    """Polls until `check()` returns something true, and returns it."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, "not in time"
            return found
        time.sleep(0.1)


def heard_about(bot) -> set[int]:
    return {json.loads(r.body)["data"]["conversation"]["id"] for r in bot.receiver.at(shop_bot.PATH)}


def said(server, bot, conversation_id: int) -> list[tuple[str, str]]:
    page = read(server, bot, f"/api/server/conversations/{conversation_id}/messages?after=0")
    return [(m["sender"], m["body"]) for m in page["messages"]]


def test_the_bot_greets_and_hands_over_when_the_customer_asks_for_a_person(chat):
    server, world, bot = chat
    conversation_id = customer_says(server, world, "alice", "c1", "Hello, where is my parcel?")
    eventually(lambda: len(said(server, bot, conversation_id)) == 2)
    assert said(server, bot, conversation_id)[1] == ("bot", shop_bot.GREETING)
    assert conversation(server, bot, conversation_id)["status"] == "bot"

    customer_says(server, world, "alice", "c2", "Can I talk to a person?")
    eventually(lambda: conversation(server, bot, conversation_id)["status"] == "open")
    # No agent is in: it waits in the queue, with everything the bot and the customer said.
    assert conversation(server, bot, conversation_id)["agent"] is None
    assert said(server, bot, conversation_id) == [
        ("customer", "Hello, where is my parcel?"),
        ("bot", shop_bot.GREETING),
        ("customer", "Can I talk to a person?"),
        ("bot", shop_bot.HANDING_OVER),
    ]
    assert bot.receiver.errors == []


def test_a_bot_that_is_down_does_not_strand_the_customer(chat):
    server, world, bot = chat
    bot.receiver.answers[shop_bot.PATH] = 503
    conversation_id = customer_says(server, world, "bob", "c1", "Hello?")
    # The bot's receiver refused the customer's message.
    eventually(lambda: conversation_id in heard_about(bot))
    assert conversation(server, bot, conversation_id)["status"] == "bot"
    server.move_clock(21)
    eventually(lambda: conversation(server, bot, conversation_id)["status"] == "open")
    assert said(server, bot, conversation_id) == [("customer", "Hello?")]
