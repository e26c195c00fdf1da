"""The event hub: domain code emits events inside a transaction; they are published only after commit.

A subscriber (one websocket) listens to a few channels and reads frames, already serialised to JSON
text, from its own queue. `InProcessHub` serves one server process; a Redis hub with the same small
interface is the scale-out path (REDIS_URL).
"""

import json
import queue
import threading
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import event
from sqlalchemy.orm import Session

OUTBOX = "persistent_chat_outbox"


class Subscription:
    def __init__(self, hub: "InProcessHub", channels: Iterable[str]):
        self._hub = hub
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.channels: set[str] = set()
        for channel in channels:
            self.add(channel)

    def add(self, channel: str) -> None:
        if channel not in self.channels:
            self.channels.add(channel)
            self._hub._attach(channel, self)

    def remove(self, channel: str) -> None:
        if channel in self.channels:
            self.channels.discard(channel)
            self._hub._detach(channel, self)

    def get(self, timeout: float | None = None) -> str | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def deliver(self, frame: str) -> None:
        self._queue.put(frame)

    def close(self) -> None:
        for channel in list(self.channels):
            self.remove(channel)


class InProcessHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    def subscribe(self, channels: Iterable[str]) -> Subscription:
        return Subscription(self, channels)

    def publish(self, channels: Iterable[str], frame: str) -> None:
        with self._lock:
            targets = {sub for channel in channels for sub in self._subscribers.get(channel, ())}
        for sub in targets:
            sub.deliver(frame)

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


hub = InProcessHub()


def emit(session: Session, channels: Iterable[str], payload: dict) -> None:
    """Queue an event on the session; it reaches subscribers only if and when the session commits."""
    session.info.setdefault(OUTBOX, []).append((tuple(channels), payload))


@event.listens_for(Session, "after_commit")
def _publish_outbox(session: Session) -> None:
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
