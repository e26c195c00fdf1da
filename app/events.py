"""The event hub: domain code emits events inside a transaction; they are published only after commit.

A subscriber (one websocket) listens to a few channels and reads frames, already serialised to JSON
text, from its own queue. `InProcessHub` (the default) serves one server process; `RedisHub`
(REDIS_URL) carries events between the processes of a deployment over Redis pub/sub, each process
subscribed to the channels its own sockets listen to, and only while they do.
"""

import json
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable

import redis
from flask import Flask
from sqlalchemy import event, make_url
from sqlalchemy.orm import Session

OUTBOX = "persistent_chat_outbox"
log = logging.getLogger(__name__)


class Subscription:
    def __init__(self, hub: "LocalHub", channels: Iterable[str]):
        self._hub = hub
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        # Called after each delivery, so a socket needs no greenlet waiting on an empty queue.
        self.on_delivery: Callable[[], None] | None = None
        self.channels: set[str] = set()
        for channel in channels:
            self.add(channel)

    def add(self, channel: str) -> None:
        """Listen to `channel`; once this returns, every event published after it is received."""
        if channel not in self.channels:
            self.channels.add(channel)
            self._hub._attach(channel, self)

    def remove(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self._hub._detach(channel, self)

    def get(self, timeout: float | None = None) -> str | None:
        try:
            # Not waiting at all skips the timer a timed wait arms (under gevent, one per call).
            return self._queue.get(block=False) if timeout == 0 else self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def deliver(self, frame: str) -> None:
        self._queue.put(frame)
        if self.on_delivery is not None:
            self.on_delivery()

    def empty(self) -> bool:
        return self._queue.empty()

    def close(self) -> None:
        for channel in list(self.channels):
            self.remove(channel)


class LocalHub:
    """This process's subscriptions by channel; one event reaches a subscription once, however many of
    its channels it was published to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        return Subscription(self, channels)

    def listening(self, channel: str) -> bool:
        """Whether any socket listens to `channel` (is a widget or a console open?)."""
        return bool(self._targets([channel]))

    def _targets(self, channels: Iterable[str]) -> set[Subscription]:
        with self._lock:
            return {sub for channel in channels for sub in self._subscribers.get(channel, ())}

    def _attach(self, channel: str, sub: Subscription) -> None:
        with self._lock:
            self._subscribers[channel].add(sub)

    def _detach(self, channel: str, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[channel]


class InProcessHub(LocalHub):
    def publish(self, channels: Iterable[str], frame: str) -> None:
        for sub in self._targets(channels):
            sub.deliver(frame)


class RedisHub(LocalHub):
    """Publishes every event to Redis; one pub/sub connection per process, read by one background thread
    (a greenlet under gevent), hands what arrives to the local subscriptions.

    An event published to several channels travels once per channel, tagged with one id, so that a
    subscription listening to two of them still gets it once. SUBSCRIBE is confirmed before `add()`
    returns: a socket subscribes and then reads its backlog from the database, and an event published
    in between must not be lost in Redis.
    """

    SUBSCRIBE_TIMEOUT = 5.0
    # Events of one publish arrive together; remembering the last few hundred is plenty to drop repeats.
    RECENT_EVENTS = 512

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        # The ping keeps a silent pub/sub connection honest: a dead one is noticed and re-subscribed.
        self._redis = redis.Redis.from_url(url, health_check_interval=25)
        self._pubsub = self._redis.pubsub()
        self._confirmations: dict[str, deque[threading.Event]] = defaultdict(deque)
        self._recent: OrderedDict[str, set[Subscription]] = OrderedDict()
        self._reader: threading.Thread | None = None
        self._closed = False

    def publish(self, channels: Iterable[str], frame: str) -> None:
        data = f"{uuid.uuid4().hex} {frame}"
        pipe = self._redis.pipeline(transaction=False)
        for channel in channels:
            pipe.publish(self.prefix + channel, data)
        pipe.execute()

    def listening(self, channel: str) -> bool:
        """Whether a socket of any process listens to `channel`: each process subscribes to a channel in
        Redis while a socket of its own listens to it, and a process that dies loses its subscriptions."""
        return any(count for _name, count in self._redis.pubsub_numsub(self.prefix + channel))

    def _attach(self, channel: str, sub: Subscription) -> None:
        with self._lock:
            first = not self._subscribers.get(channel)
            self._subscribers[channel].add(sub)
            pending = self._confirmations.get(channel)
            if first:
                confirmed = threading.Event()
                self._confirmations[channel].append(confirmed)
                self._pubsub.subscribe(self.prefix + channel)
            elif pending:
                confirmed = pending[-1]
            else:
                return
            if self._reader is None:
                self._reader = threading.Thread(target=self._read, name="persistent-chat-redis", daemon=True)
                self._reader.start()
        if not confirmed.wait(self.SUBSCRIBE_TIMEOUT):
            raise TimeoutError(f"Redis did not confirm the subscription to {channel}")

    def _detach(self, channel: str, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(channel)
            if subs is None:
                return
            subs.discard(sub)
            if not subs:
                del self._subscribers[channel]
                self._pubsub.unsubscribe(self.prefix + channel)

    def _read(self) -> None:
        while not self._closed:
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except redis.RedisError:
                # redis-py reconnects and re-subscribes on the next read; events published meanwhile are
                # lost to live delivery (clients still get them from the backlog when they reconnect).
                log.exception("reading from Redis failed")
                time.sleep(1.0)
                continue
            if message is None or message["type"] not in ("subscribe", "message"):
                continue
            try:
                self._dispatch(message)
            except Exception:
                # One malformed message must not end live delivery for every socket of the process.
                log.exception("dispatching a Redis message failed")

    def _dispatch(self, message: dict) -> None:
        channel = message["channel"].decode()[len(self.prefix) :]
        if message["type"] == "subscribe":
            with self._lock:
                waiting = self._confirmations.get(channel)
                # After a reconnect redis-py re-subscribes on its own: those confirmations have no waiter.
                if waiting:
                    waiting.popleft().set()
                    if not waiting:
                        del self._confirmations[channel]
            return
        event_id, frame = message["data"].decode().split(" ", 1)
        delivered = self._recent.setdefault(event_id, set())
        self._recent.move_to_end(event_id)
        while len(self._recent) > self.RECENT_EVENTS:
            self._recent.popitem(last=False)
        for sub in self._targets([channel]) - delivered:
            delivered.add(sub)
            sub.deliver(frame)

    def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.join()
        self._pubsub.close()
        self._redis.close()


hub: InProcessHub | RedisHub = InProcessHub()


def configure(app: Flask) -> None:
    """Use Redis when REDIS_URL is set. Channels are prefixed with the database's name (or
    REDIS_CHANNEL_PREFIX), so deployments, or test runs, sharing one Redis do not hear each other."""
    global hub
    url = app.config.get("REDIS_URL")
    if not url:
        if not isinstance(hub, InProcessHub):
            hub = InProcessHub()
        return
    prefix = app.config.get("REDIS_CHANNEL_PREFIX") or (
        f"persistent-chat:{make_url(app.config['SQLALCHEMY_DATABASE_URI']).database}:"
    )
    if not (isinstance(hub, RedisHub) and (hub.url, hub.prefix) == (url, prefix)):
        hub = RedisHub(url, prefix)


def emit(session: Session, channels: Iterable[str], payload: dict) -> None:
    """Queue an event on the session; it reaches subscribers only if and when the session commits."""
    session.info.setdefault(OUTBOX, []).append((tuple(channels), payload))


@event.listens_for(Session, "after_commit")
def _publish_outbox(session: Session) -> None:
    for channels, payload in session.info.pop(OUTBOX, ()):
        try:
            hub.publish(channels, json.dumps(payload, separators=(",", ":")))
        except redis.RedisError:
            # The change is committed and clients catch up from the backlog when they reconnect; failing
            # the request now would only make it look as if nothing had been saved.
            log.exception("publishing an event to Redis failed")


@event.listens_for(Session, "after_soft_rollback")
def _drop_outbox(session: Session, previous_transaction) -> None:
    session.info.pop(OUTBOX, None)


def customer_channel(customer_id: int, workstream_id: str) -> str:
    return f"customer:{customer_id}:{workstream_id}"


def agent_channel(agent_id: int) -> str:
    return f"agent:{agent_id}"


def conversation_channel(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


CONSOLE_CHANNEL = "console"
