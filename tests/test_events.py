"""The event hubs behind one interface: in-process, and Redis pub/sub between processes (two RedisHub
objects stand for two server processes)."""

import secrets
import time

import pytest
import redis

from app.events import RESYNC, InProcessHub, RedisHub
from tests.support import TEST_REDIS_URL, RedisServer


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


def test_a_socket_queue_over_its_limit_is_replaced_by_one_resync():
    hub = InProcessHub()
    hub.queue_limit = 100
    sub = hub.subscribe(["conversation:1"])
    hub.publish(["conversation:1"], "a" * 60)
    hub.publish(["conversation:1"], "b" * 60)  # over the limit: too far behind to catch up live
    hub.publish(["conversation:1"], "c")
    assert sub.get(timeout=0) == RESYNC
    assert sub.get(timeout=0) is None
    sub.close()


@pytest.fixture
def private_redis(tmp_path):
    running = RedisServer(tmp_path).start()
    yield running
    running.stop()


def test_a_subscribe_while_redis_is_down_records_nothing_and_works_once_it_is_back(private_redis):
    prefix = f"test-{secrets.token_hex(4)}:"
    private_redis.stop()
    hub, publisher = RedisHub(private_redis.url, prefix), RedisHub(private_redis.url, prefix)
    for _ in range(3):
        with pytest.raises(redis.ConnectionError):
            hub.subscribe(["customer:1:w"])
        # Nothing recorded: no queue collecting the channel's events, nobody waiting for a confirmation.
        assert hub._targets(["customer:1:w"]) == set() and not hub._confirmations
    private_redis.start()
    sub = hub.subscribe(["customer:1:w"])
    publisher.publish(["customer:1:w"], '{"n":1}')
    assert sub.get(timeout=5) == '{"n":1}'
    sub.close()
    for each in (hub, publisher):
        each.close()


def test_publishing_never_waits_for_a_frozen_redis_and_what_it_missed_becomes_a_resync(private_redis):
    prefix = f"test-{secrets.token_hex(4)}:"
    publisher, listener = RedisHub(private_redis.url, prefix), RedisHub(private_redis.url, prefix)
    sub = listener.subscribe(["conversation:7"])
    publisher.publish(["conversation:7"], '{"n":0}')
    assert sub.get(timeout=5) == '{"n":0}'
    private_redis.freeze()
    try:
        started = time.monotonic()
        for n in range(1, 101):
            publisher.publish(["conversation:7"], f'{{"n":{n}}}')
        assert time.monotonic() - started < 0.05
        time.sleep(RedisHub.REDIS_TIMEOUT + 0.5)  # the publisher's batch times out meanwhile
    finally:
        private_redis.thaw()
    frames = []
    while (frame := sub.get(timeout=10)) != RESYNC:
        assert frame is not None, f"no resync after {len(frames)} frames"
        frames.append(frame)
    sub.close()
    for each in (publisher, listener):
        each.close()


def test_a_channel_left_while_redis_was_down_is_not_listened_to_once_it_is_back(private_redis):
    prefix = f"test-{secrets.token_hex(4)}:"
    hub = RedisHub(private_redis.url, prefix)
    sub = hub.subscribe(["agent:3"])
    private_redis.stop()
    sub.close()  # UNSUBSCRIBE fails: redis-py would subscribe again when it reconnects
    private_redis.start()
    # Once a new subscription is confirmed the connection is back, with what redis-py re-subscribed.
    probe = hub.subscribe(["agent:4"])
    deadline = time.monotonic() + 10
    while (channels := private_redis.channels(prefix)) != {"agent:4"}:
        assert time.monotonic() < deadline, channels
        time.sleep(0.05)
    probe.close()
    hub.close()
