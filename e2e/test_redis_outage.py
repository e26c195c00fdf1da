"""Redis down for 10 s between two server processes (the widget on one, the console on the other,
sharing PostgreSQL): every message written meanwhile appears on the other side, once, in order, within
10 s of Redis returning, without a reload. Redis is the test's own, on a free port."""

import secrets
import time
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from e2e.conftest import Console, HostSite, Widget
from e2e.test_gaps import post_as_customer
from tests.support import (
    TEST_DATABASE_URL,
    ChatServer,
    RedisServer,
    database_url,
    free_port,
    migrated_app,
    seed,
    use_database,
)
from tests.test_scaleout import AgentSession

pytestmark = [
    pytest.mark.database,
    pytest.mark.skipif(not TEST_DATABASE_URL, reason="two processes need PostgreSQL: set TEST_DATABASE_URL"),
]


def listening(store: RedisServer, fragment: str) -> bool:
    """Whether some server process listens to a channel whose name contains `fragment`."""
    return any(fragment in channel for channel in store.channels(""))


@dataclass
class Outage:
    redis: RedisServer
    alice: Widget  # on server A
    agent: Console  # on server B
    site: HostSite
    world: object
    b: ChatServer


@pytest.fixture
def outage(tmp_path, contexts):
    """Server A for the customer's website, server B for the console, and their private Redis."""
    host_port = free_port()
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    world = seed(migrated_app(first), [f"http://127.0.0.1:{host_port}"], {"ada": "Ada"})
    use_database(second, database_url(first))
    store = RedisServer(tmp_path).start()
    env = {"REDIS_URL": store.url, "SECRET_KEY": secrets.token_urlsafe(32)}
    a, b = ChatServer.start_together(ChatServer(first, env), ChatServer(second, env))
    b.world = world
    site = HostSite(a.url, world, host_port)
    page = contexts().new_page()
    page.goto(site.url("alice"))
    alice = Widget(page).open()
    email, password = world.agents["ada"]
    agent = Console(contexts().new_page(), b).sign_in(email, password)
    alice.write("Hello before the outage")
    agent.open("Hello before the outage")
    yield Outage(store, alice, agent, site, world, b)
    site.close()
    a.stop()
    b.stop()
    store.stop()


def both_sides_show(o: Outage, written: list[str], back: float) -> None:
    """Everything, once, in order, on both screens, within 10 s of Redis returning."""
    for bodies in (o.alice.log.locator(".pc-body"), o.agent.log().locator(".msg .msg-body")):
        expect(bodies).to_have_text(written, timeout=max(1.0, back + 10 - time.monotonic()) * 1000)
    print(f"both sides complete {time.monotonic() - back:.1f} s after Redis returned")


def test_a_message_after_the_outage_makes_both_sides_fetch_what_they_missed(outage):
    """The writers are another device of the customer and the agent's API client, so the two screens
    only watch; the next live message shows each of them the gap."""
    o = outage
    session = AgentSession(o.b, "ada")
    conversation_id = post_as_customer(o.site, o.world, "alice", "Hello again")["conversation_id"]
    written = ["Hello before the outage", "Hello again"]
    expect(o.agent.log().locator(".msg")).to_have_count(2)
    o.redis.stop()
    down = time.monotonic()
    for i in range(1, 4):
        body = f"Agent, during the outage {i}"
        session.post(o.b, f"/conversations/{conversation_id}/messages", {"client_id": f"a-{i}", "body": body})
        post_as_customer(o.site, o.world, "alice", f"Customer, during the outage {i}")
        written += [body, f"Customer, during the outage {i}"]
    time.sleep(max(0.0, down + 10 - time.monotonic()))
    o.redis.start()
    back = time.monotonic()
    # Both processes subscribe again on their own; what was published meanwhile is gone from live delivery.
    while not (listening(o.redis, ":customer:") and listening(o.redis, ":agent:")) and time.monotonic() < back + 5:
        time.sleep(0.05)
    session.post(o.b, f"/conversations/{conversation_id}/messages", {"client_id": "a-after", "body": "Agent, after"})
    post_as_customer(o.site, o.world, "alice", "Customer, after")
    both_sides_show(o, [*written, "Agent, after", "Customer, after"], back)


def test_redis_down_10_s_while_the_agent_writes_everything_shows_without_a_later_message(outage):
    """The agent types in the console; the customer writes from another device, so the widget's own
    socket stays as it was: only the server's resync tells it what it missed."""
    o = outage
    written = ["Hello before the outage"]
    o.redis.stop()
    down = time.monotonic()
    for i in range(1, 4):
        o.agent.reply(f"Agent, during the outage {i}")
        post_as_customer(o.site, o.world, "alice", f"Customer, during the outage {i}")
        written += [f"Agent, during the outage {i}", f"Customer, during the outage {i}"]
    time.sleep(max(0.0, down + 10 - time.monotonic()))
    o.redis.start()
    both_sides_show(o, written, time.monotonic())


def test_redis_down_10_s_while_both_type_in_their_windows(outage):
    o = outage
    written = ["Hello before the outage"]
    o.redis.stop()
    down = time.monotonic()
    for i in range(1, 4):
        o.agent.reply(f"Agent, during the outage {i}")
        o.alice.write(f"Customer, during the outage {i}")
        written += [f"Agent, during the outage {i}", f"Customer, during the outage {i}"]
    time.sleep(max(0.0, down + 10 - time.monotonic()))
    o.redis.start()
    both_sides_show(o, written, time.monotonic())
