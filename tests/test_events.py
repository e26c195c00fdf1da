"""The event hubs behind one interface: in-process, and Redis pub/sub between processes (two RedisHub
objects stand for two server processes)."""

import secrets
import time

import pytest
import redis

from app.events import InProcessHub, RedisHub
from tests.support import TEST_REDIS_URL


@pytest.fixture
def redis_hubs():
    """Two hubs on one Redis, as two server processes see it, on channels no other test run uses."""
    if not TEST_REDIS_URL:
        pytest.skip("needs Redis: set TEST_REDIS_URL (make test does when Redis answers on 127.0.0.1:6379)")
    prefix = f"test-{secrets.token_hex(4)}:"
    hubs = [RedisHub(TEST_REDIS_URL, prefix), RedisHub(TEST_REDIS_URL, prefix)]
    yield hubs
    for hub in hubs:
        hub.close()


def redis_channels(prefix: str, expected: set[str]) -> set[str]:
    """What Redis knows is being listened to under `prefix`, once it is `expected` or after 2 s: an
    UNSUBSCRIBE is not waited for, so Redis may take a moment to see it."""
    client = redis.Redis.from_url(TEST_REDIS_URL)
    deadline = time.monotonic() + 2
    try:
        while True:
            channels = {c.decode().removeprefix(prefix) for c in client.pubsub_channels(prefix + "*")}
            if channels == expected or time.monotonic() > deadline:
                return channels
            time.sleep(0.01)
    finally:
        client.close()


@pytest.fixture(params=["in-process", "redis"])
def hubs(request):
    """(publisher, subscriber's hub): one hub in process, two processes' hubs with Redis."""
    if request.param == "in-process":
        hub = InProcessHub()
        return hub, hub
    return request.getfixturevalue("redis_hubs")


def test_a_subscription_gets_what_is_published_to_its_channels_once(hubs):
    publisher, local = hubs
    sub = local.subscribe(["agent:1", "conversation:5"])
    other = local.subscribe(["agent:2"])
    publisher.publish(["agent:1", "conversation:5", "customer:3:w"], '{"n":1}')
    publisher.publish(["conversation:6"], '{"n":2}')
    publisher.publish(["conversation:5"], '{"n":3}')
    assert [sub.get(timeout=2), sub.get(timeout=2)] == ['{"n":1}', '{"n":3}']
    assert sub.get(timeout=0.2) is None
    assert other.get(timeout=0.05) is None
    sub.close()
    other.close()


def test_a_removed_channel_is_no_longer_heard_and_an_added_one_is_at_once(hubs):
    publisher, local = hubs
    sub = local.subscribe(["conversation:1"])
    sub.remove("conversation:1")
    sub.add("conversation:2")
    publisher.publish(["conversation:1"], "old")
    publisher.publish(["conversation:2"], "new")
    assert sub.get(timeout=2) == "new"
    assert sub.get(timeout=0.2) is None
    sub.close()


def test_a_process_listens_in_redis_only_to_what_its_sockets_need(redis_hubs):
    a, _b = redis_hubs
    first = a.subscribe(["console", "agent:1"])
    second = a.subscribe(["console"])
    assert redis_channels(a.prefix, {"console", "agent:1"}) == {"console", "agent:1"}
    first.close()
    assert redis_channels(a.prefix, {"console"}) == {"console"}
    second.close()
    assert redis_channels(a.prefix, set()) == set()
