"""The event hub: domain code emits events inside a transaction; they are published only after commit.

A subscriber (one websocket) listens to a few channels and reads frames, already serialised to JSON
text, from its own queue. `InProcessHub` (the default) serves one server process; `RedisHub`
(REDIS_URL) carries events between the processes of a deployment over Redis pub/sub, each process
subscribed to the channels its own sockets listen to, and only while they do.
"""

import atexit
import json
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from contextlib import suppress

import redis
from flask import Flask
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import event, make_url
from sqlalchemy.orm import Session

OUTBOX = "persistent_chat_outbox"
log = logging.getLogger(__name__)


# Sent by the hub to a socket that may have missed events; the socket passes it on and closes (1012),
# and the client comes back from its cursor.
RESYNC = '{"type":"resync"}'
# What a socket's queue may hold before it counts as too far behind (JSON text, about bytes).
QUEUE_LIMIT_BYTES = 1024 * 1024


# Held for a few list operations at a time by every subscription of the process: a lock per subscription
# would cost each idle socket memory for nothing.
_state = threading.Lock()


class Subscription:
    """A socket's queue of frames. Idle sockets are most of a server's, so it holds a plain list and makes
    the event a blocking `get` waits on only while one waits."""

    def __init__(self, hub: "LocalHub", channels: Iterable[str], limit: int = QUEUE_LIMIT_BYTES):
        self._hub = hub
        self._frames: list[str] = []
        self._limit = limit
        self._queued = 0
        self._waiter: threading.Event | None = None
        # Once told to resync, the socket is going away: nothing more is queued for it.
        self.resyncing = False
        # Called after each delivery, so a socket needs no greenlet waiting on an empty queue.
        self.on_delivery: Callable[[], None] | None = None
        self.channels: set[str] = set()
        try:
            for channel in channels:
                self.add(channel)
        except BaseException:
            # Nobody gets this object to close: whatever was attached must be detached here.
            self.close()
            raise

    def add(self, channel: str) -> None:
        """Listen to `channel`; once this returns, every event published after it is received."""
        if channel not in self.channels:
            self._hub._attach(channel, self)
            self.channels.add(channel)

    def remove(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self._hub._detach(channel, self)

    def get(self, timeout: float | None = None) -> str | None:
        """The next frame, waiting for one up to `timeout` seconds (None: as long as it takes)."""
        with _state:
            if self._frames or timeout == 0:
                return self._pop()
            waiter = self._waiter = threading.Event()
        waiter.wait(timeout)
        with _state:
            self._waiter = None
            return self._pop()

    def take(self) -> list[str]:
        """Every frame queued, at once."""
        with _state:
            frames, self._frames, self._queued = self._frames, [], 0
        return frames

    def _pop(self) -> str | None:
        if not self._frames:
            return None
        frame = self._frames.pop(0)
        self._queued -= len(frame)
        return frame

    def deliver(self, frame: str) -> None:
        with _state:
            if self.resyncing:
                return
            if self._queued + len(frame) > self._limit:
                # Too far behind to catch up live: the client resumes from its cursor instead.
                self._resync()
            else:
                self._queued += len(frame)
                self._frames.append(frame)
                if self._waiter is not None:
                    self._waiter.set()
        if self.on_delivery is not None:
            self.on_delivery()

    def resync(self) -> None:
        """This subscription may have missed events: drop what is queued and queue RESYNC instead."""
        with _state:
            if self.resyncing:
                return
            self._resync()
        if self.on_delivery is not None:
            self.on_delivery()

    def _resync(self) -> None:
        self.resyncing = True
        self._frames, self._queued = [RESYNC], len(RESYNC)
        if self._waiter is not None:
            self._waiter.set()

    def empty(self) -> bool:
        return not self._frames

    def close(self) -> None:
        for channel in list(self.channels):
            self.remove(channel)


class LocalHub:
    """This process's subscriptions by channel; one event reaches a subscription once, however many of
    its channels it was published to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self.queue_limit = QUEUE_LIMIT_BYTES

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        return Subscription(self, channels, self.queue_limit)

    def listening(self, channel: str) -> bool:
        """Whether any socket listens to `channel` (is a widget or a console open?)."""
        return bool(self._targets([channel]))

    def _targets(self, channels: Iterable[str]) -> set[Subscription]:
        with self._lock:
            return {sub for channel in channels for sub in self._subscribers.get(channel, ())}

    def _everyone(self) -> set[Subscription]:
        with self._lock:
            return {sub for subs in self._subscribers.values() for sub in subs}

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

    Redis may go away or freeze; the database stays the truth, and what the hub can no longer promise
    it turns into resyncs. Publishing only queues the event (a commit never waits on Redis): a publisher
    thread sends the queue in batches, and events it could not send, or had no room for, become a
    RESYNC published to their channels once Redis answers again. A reader that lost its connection
    tells every local subscription to resync once it is back. A subscription is recorded only once
    Redis took the SUBSCRIBE, and undone when the confirmation does not come.
    """

    SUBSCRIBE_TIMEOUT = 5.0
    # Events of one publish arrive together; remembering the last few hundred is plenty to drop repeats.
    RECENT_EVENTS = 512
    # Seconds a Redis command may take before it counts as failed (a frozen Redis must not hang us).
    REDIS_TIMEOUT = 2.0
    PUBLISH_QUEUE = 10_000
    PUBLISH_BATCH = 200

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        # No retries with backoff inside redis-py: a failure is reported at once and handled here.
        # The ping keeps a silent pub/sub connection honest: a dead one is noticed and re-subscribed.
        self._redis = redis.Redis.from_url(
            url,
            health_check_interval=25,
            socket_timeout=self.REDIS_TIMEOUT,
            socket_connect_timeout=self.REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),
        )
        self._pubsub = self._redis.pubsub()
        self._confirmations: dict[str, deque[threading.Event]] = defaultdict(deque)
        self._recent: OrderedDict[str, set[Subscription]] = OrderedDict()
        self._outgoing: queue.Queue[tuple[tuple[str, ...], str]] = queue.Queue(self.PUBLISH_QUEUE)
        # Channels that missed events and are owed a RESYNC; its own lock, as the hub's is held
        # across a SUBSCRIBE and publishing must never wait for that.
        self._owed: set[str] = set()
        self._owed_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._publisher: threading.Thread | None = None
        self._closed = False

    def publish(self, channels: Iterable[str], frame: str) -> None:
        channels = tuple(channels)
        try:
            self._outgoing.put_nowait((channels, frame))
        except queue.Full:
            with self._owed_lock:
                if not self._owed:
                    log.warning("the Redis publish queue is full: events are dropped and their sockets resync")
                self._owed.update(channels)
        if self._publisher is None:
            with self._owed_lock:
                if self._publisher is None:
                    self._publisher = _start(self._publish_pending, "persistent-chat-redis-publisher")

    def _publish_pending(self) -> None:
        failing = False
        while not self._closed:
            batch = self._next_batch()
            with self._owed_lock:
                owed, self._owed = self._owed, set()
            if not batch and not owed:
                continue
            pipe = self._redis.pipeline(transaction=False)
            for channels, frame in batch:
                data = f"{uuid.uuid4().hex} {frame}"
                for channel in channels:
                    pipe.publish(self.prefix + channel, data)
            resync = f"{uuid.uuid4().hex} {RESYNC}"
            for channel in owed:
                pipe.publish(self.prefix + channel, resync)
            try:
                pipe.execute()
            except redis.RedisError as error:
                with self._owed_lock:
                    self._owed |= owed.union(*(channels for channels, _frame in batch))
                if not failing:
                    log.warning("publishing to Redis failed (%s): the sockets concerned resync once it is back", error)
                    failing = True
                time.sleep(0.2)
                continue
            finally:
                for _sent in batch:
                    self._outgoing.task_done()
            if failing:
                log.warning("publishing to Redis works again: sent RESYNC to %d channels", len(owed))
                failing = False

    def drain(self, timeout: float = 2.0) -> None:
        """Wait, a little, until what was published has gone to Redis. A command (`retire-auth-key`,
        `disable-agent`, …) exits right after its commit, and its queued events would die with it."""
        deadline = time.monotonic() + timeout
        while not self._closed and (self._outgoing.unfinished_tasks or self._owed) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _next_batch(self) -> list[tuple[tuple[str, ...], str]]:
        try:
            batch = [self._outgoing.get(timeout=1.0)]
        except queue.Empty:
            return []
        while len(batch) < self.PUBLISH_BATCH:
            try:
                batch.append(self._outgoing.get_nowait())
            except queue.Empty:
                break
        return batch

    def listening(self, channel: str) -> bool:
        """Whether a socket of any process listens to `channel`: each process subscribes to a channel in
        Redis while a socket of its own listens to it, and a process that dies loses its subscriptions."""
        return any(count for _name, count in self._redis.pubsub_numsub(self.prefix + channel))

    def _attach(self, channel: str, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(channel)
            if subs:
                subs.add(sub)
                pending = self._confirmations.get(channel)
                if not pending:
                    return
                confirmed = pending[-1]
            else:
                # Raises while Redis is away, before anything is recorded.
                self._pubsub.subscribe(self.prefix + channel)
                confirmed = threading.Event()
                self._confirmations[channel].append(confirmed)
                self._subscribers[channel].add(sub)
                if self._reader is None:
                    self._reader = _start(self._read, "persistent-chat-redis")
        if not confirmed.wait(self.SUBSCRIBE_TIMEOUT):
            self._detach(channel, sub)
            raise TimeoutError(f"Redis did not confirm the subscription to {channel}")

    def _detach(self, channel: str, sub: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(channel)
            if subs is None or sub not in subs:
                return
            subs.discard(sub)
            if subs:
                return
            del self._subscribers[channel]
            # Redis away: redis-py subscribes again when it reconnects, and _back() undoes that.
            with suppress(redis.RedisError):
                self._pubsub.unsubscribe(self.prefix + channel)

    def _read(self) -> None:
        lost = False
        while not self._closed:
            try:
                message = self._pubsub.get_message(timeout=1.0)
            except redis.RedisError as error:
                # redis-py reconnects and re-subscribes on a later read; events published meanwhile are
                # lost to live delivery, so every socket resyncs once the connection is back.
                if not lost:
                    log.warning("lost the Redis connection (%s): live delivery paused", error)
                    lost = True
                time.sleep(0.5)
                continue
            if lost:
                lost = False
                self._back()
            if message is None or message["type"] not in ("subscribe", "message"):
                continue
            try:
                self._dispatch(message)
            except Exception:
                # One malformed message must not end live delivery for every socket of the process.
                log.exception("dispatching a Redis message failed")

    def _back(self) -> None:
        subs = self._everyone()
        log.warning("the Redis connection is back: %d sockets resync", len(subs))
        for sub in subs:
            sub.resync()
        with self._lock:
            stale = [c for c in self._pubsub.channels if c.decode()[len(self.prefix) :] not in self._subscribers]
            if stale:
                with suppress(redis.RedisError):
                    self._pubsub.unsubscribe(*stale)

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
        if frame == RESYNC:
            for sub in self._targets([channel]):
                sub.resync()
            return
        delivered = self._recent.setdefault(event_id, set())
        self._recent.move_to_end(event_id)
        while len(self._recent) > self.RECENT_EVENTS:
            self._recent.popitem(last=False)
        for sub in self._targets([channel]) - delivered:
            delivered.add(sub)
            sub.deliver(frame)

    def close(self) -> None:
        self._closed = True
        for thread in (self._reader, self._publisher):
            if thread is not None:
                thread.join()
        self._pubsub.close()
        self._redis.close()


def _start(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


hub: InProcessHub | RedisHub = InProcessHub()


def configure(app: Flask) -> None:
    """Use Redis when REDIS_URL is set. Channels are prefixed with the database's name (or
    REDIS_CHANNEL_PREFIX), so deployments, or test runs, sharing one Redis do not hear each other."""
    global hub
    url = app.config.get("REDIS_URL")
    if not url:
        if not isinstance(hub, InProcessHub):
            hub = InProcessHub()
        hub.queue_limit = app.config.get("SOCKET_QUEUE_LIMIT_BYTES", QUEUE_LIMIT_BYTES)
        return
    prefix = app.config.get("REDIS_CHANNEL_PREFIX") or (
        f"persistent-chat:{make_url(app.config['SQLALCHEMY_DATABASE_URI']).database}:"
    )
    if not (isinstance(hub, RedisHub) and (hub.url, hub.prefix) == (url, prefix)):
        hub = RedisHub(url, prefix)
        atexit.register(hub.drain)
    hub.queue_limit = app.config.get("SOCKET_QUEUE_LIMIT_BYTES", QUEUE_LIMIT_BYTES)


def emit(session: Session, channels: Iterable[str], payload: dict) -> None:
    """Queue an event on the session; it reaches subscribers only if and when the session commits."""
    session.info.setdefault(OUTBOX, []).append((tuple(channels), payload))


@event.listens_for(Session, "after_commit")
def _publish_outbox(session: Session) -> None:
    # Never waits on Redis (RedisHub only queues): the change is committed, and its ack must not wait.
    for channels, payload in session.info.pop(OUTBOX, ()):
        hub.publish(channels, json.dumps(payload, separators=(",", ":")))


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


def session_channel(agent_id: int) -> str:
    """Where an agent's console sockets hear that their sessions have ended (password, disable, sign-out)."""
    return f"agent-session:{agent_id}"


def auth_key_channel(auth_setting_id: int, kid: str) -> str:
    """Where widget sockets that authenticated with a key hear that it was retired."""
    return f"auth-key:{auth_setting_id}:{kid}"
