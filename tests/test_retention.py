"""Retention per workstream: conversations closed longer ago than the workstream's days are deleted by
the scheduler, in batches; nothing else is touched; off by default."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock, conversations, customer_auth, privacy, timers
from app.extensions import db
from app.models import Conversation, ConversationEvent, Message, Workstream
from app.workstreams import create
from tests.support import Clock


@pytest.fixture
def time_(ctx):
    return Clock()


def a_conversation(world, workstream_id: str, sub: str, *, close: bool) -> int:
    customer = conversations.customer_for(customer_auth.Identity(world.auth_setting_id, sub, sub.title()))
    message, _ = conversations.post_customer_message(workstream_id, customer.id, f"{sub}-1", f"From {sub}")
    if close:
        conversations.close(db.session.get(Conversation, message.conversation_id), "system", None)
        db.session.commit()
    return message.conversation_id


def remaining(ids: list[int]) -> list[int]:
    db.session.expire_all()
    return list(db.session.scalars(select(Conversation.id).where(Conversation.id.in_(ids)).order_by(Conversation.id)))


def test_closed_conversations_past_the_workstreams_retention_go_in_batches(world, time_, monkeypatch):
    monkeypatch.setattr(privacy, "RETENTION_BATCH", 2)
    workstream = db.session.get(Workstream, world.workstream_id)
    workstream.retention_days = 30
    db.session.commit()
    forever = create(
        {"name": "Forever", "mode": "persistent", "auth_setting_id": world.auth_setting_id, "allowed_origins": []}
    )
    old = [a_conversation(world, world.workstream_id, f"old{i}", close=True) for i in range(5)]
    still_open = a_conversation(world, world.workstream_id, "open", close=False)
    kept_elsewhere = a_conversation(world, forever.id, "elsewhere", close=True)
    time_.advance(days=2)
    recent = a_conversation(world, world.workstream_id, "recent", close=True)
    everyone = [*old, still_open, kept_elsewhere, recent]

    time_.advance(days=27, hours=23)
    assert privacy.apply_retention(clock.now()) == 0
    time_.advance(hours=1, seconds=1)
    assert privacy.apply_retention(clock.now()) == 5
    assert remaining(everyone) == [still_open, kept_elsewhere, recent]
    for table in (Message, ConversationEvent):
        assert db.session.scalar(select(func.count()).select_from(table).where(table.conversation_id.in_(old))) == 0
    # The customers stay: they may come back, and start again.
    assert db.session.scalar(select(func.count()).select_from(Conversation).where(Conversation.id == recent)) == 1

    # The scheduler does it, at most every few minutes.
    monkeypatch.setattr(privacy, "_next_retention", None)
    time_.advance(days=2)
    assert timers.tick(clock.now())["retention_deleted"] == 1
    assert remaining(everyone) == [still_open, kept_elsewhere]
    # That tick also auto-closed the abandoned open one: it goes once closed for 30 days, like the rest;
    # a workstream without retention keeps everything.
    assert db.session.get(Conversation, still_open).status == "closed"
    privacy.apply_retention(clock.now() + timedelta(days=10_000))
    assert remaining(everyone) == [kept_elsewhere]


def test_retention_is_off_by_default_and_set_through_the_admin_api(app, client, world):
    from app.agents import add_agent

    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
        assert db.session.get(Workstream, world.workstream_id).retention_days is None
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    path = f"/admin/api/workstreams/{world.workstream_id}"
    assert client.patch(path, json={"retention_days": 90}).json["workstream"]["retention_days"] == 90
    for bad in (0, -1, "90", True, 100 * 365 + 1):
        response = client.patch(path, json={"retention_days": bad})
        assert response.status_code == 400 and response.json["error"]["code"] == "invalid_workstream"
    assert client.patch(path, json={"retention_days": None}).json["workstream"]["retention_days"] is None
