"""The process's copies of workstreams for the widget's sockets: a returning widget costs the database
only what depends on its customer, and a change is seen at once (or, made behind the hub's back,
within MAX_AGE_SECONDS)."""

import time

import pytest
from sqlalchemy import text, update

from app import auth_settings, conversations, customer_auth, events, payloads, workstream_copies, workstreams
from app.customer_auth import Identity
from app.errors import ChatError
from app.extensions import db
from app.models import AuthSetting, Workstream
from tests.support import KID, statements


def copy(world) -> Workstream:
    return workstream_copies.workstream(world.workstream_id)


def test_a_returning_widget_with_nothing_new_costs_two_statements(ctx, world):
    customer_id = conversations.customer_for(Identity(world.auth_setting_id, "returning", None)).id
    message, _ = conversations.post_customer_message(world.workstream_id, customer_id, "c1", "Hello")
    db.session.remove()
    copy(world)
    with statements() as executed:
        # What a hello reads: the workstream and its keys, the token, the customer, the backlog, and
        # what the welcome says of each conversation.
        workstream = copy(world)
        identity = customer_auth.verify(workstream, world.token("returning"))
        returning = conversations.customer_for(identity).id
        reset, entries = conversations.backlog(returning, world.workstream_id, message.conversation_id, 1)
        welcomed = [payloads.widget_conversation(c) for c, _page, _complete in entries]
    assert not reset and [(c.id, page) for c, page, _ in entries] == [(message.conversation_id, [])]
    assert [c["rating_wanted"] for c in welcomed] == [False]
    selects = [s for s in executed if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, executed


def test_a_new_message_is_read_with_one_more(ctx, world):
    customer_id = conversations.customer_for(Identity(world.auth_setting_id, "behind", None)).id
    first, _ = conversations.post_customer_message(world.workstream_id, customer_id, "c1", "One")
    conversations.post_customer_message(world.workstream_id, customer_id, "c2", "Two")
    db.session.remove()
    with statements() as executed:
        reset, entries = conversations.backlog(customer_id, world.workstream_id, first.conversation_id, 1)
    assert not reset and [m.body for m in entries[0][1]] == ["Two"]
    assert len(executed) == 2, executed


def test_the_copy_is_loaded_once_and_read_without_the_database(ctx, world):
    first = copy(world)
    with statements() as executed:
        again = copy(world)
        assert again.auth_setting.keys[0].kid == KID and again.allows_origin(again.origins()[0])
    assert again is first and executed == []


def test_a_changed_workstream_is_seen_at_once(ctx, world):
    before = copy(world)
    workstreams.update(db.session.get(Workstream, world.workstream_id), {"allowed_origins": ["https://new.example"]})
    after = copy(world)
    assert after is not before and after.origins() == ["https://new.example"]


def test_a_retired_key_is_refused_at_once(ctx, world):
    assert customer_auth.verify(copy(world), world.token("before")).sub == "before"
    auth_settings.retire_key(db.session.get(AuthSetting, world.auth_setting_id), KID)
    with pytest.raises(ChatError) as refused:
        customer_auth.verify(copy(world), world.token("after"))
    assert refused.value.code == "token_unknown_kid"


def test_a_change_in_bulk_is_seen_at_once(ctx, world):
    copy(world)
    db.session.execute(update(Workstream).values(hide_when_closed=True))
    db.session.commit()
    assert copy(world).hide_when_closed


def test_a_change_rolled_back_keeps_the_copy(ctx, world):
    kept = copy(world)
    db.session.get(Workstream, world.workstream_id).name = "Not saved"
    db.session.flush()
    db.session.rollback()
    assert copy(world) is kept


def test_a_change_the_hub_cannot_see_is_seen_within_the_maximum_age(ctx, world, monkeypatch):
    monkeypatch.setattr(workstream_copies, "MAX_AGE_SECONDS", 0.2)
    copy(world)
    # As a command run beside the server, or SQL typed by hand: nothing is published.
    db.session.execute(text("UPDATE workstream SET name = 'Renamed by hand'"))
    db.session.commit()
    assert copy(world).name != "Renamed by hand"
    time.sleep(0.25)
    assert copy(world).name == "Renamed by hand"


def test_an_unknown_workstream_is_none_and_looked_up_again(ctx, world):
    assert workstream_copies.workstream(None) is None
    assert workstream_copies.workstream("nope") is None
    with statements() as executed:
        assert workstream_copies.workstream("nope") is None
    assert executed, "nothing is kept for an id with no workstream"


def test_while_changes_cannot_be_heard_copies_live_their_age_and_subscribing_waits_its_turn(ctx, world, monkeypatch):
    """Redis away at start-up: copies are kept for MAX_AGE_SECONDS, like any change the hub cannot see,
    and only one caller in MAX_AGE_SECONDS pays for another try at subscribing (a frozen Redis takes
    seconds to say no)."""
    monkeypatch.setattr(workstream_copies, "MAX_AGE_SECONDS", 0.2)
    app_copies = workstream_copies.Copies()
    tries = []

    def refuse(channels):
        tries.append(channels)
        raise TimeoutError("Redis did not confirm the subscription")

    monkeypatch.setattr(events.hub, "subscribe", refuse)
    first = app_copies.get(world.workstream_id)
    assert app_copies.get(world.workstream_id) is first and len(tries) == 1
    time.sleep(0.25)
    assert app_copies.get(world.workstream_id) is not first and len(tries) == 2
