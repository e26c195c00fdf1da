"""Issue 3 in Chromium: signed customer tokens from the host page, refreshed, refused, and one identity."""

import time

from playwright.sync_api import expect
from sqlalchemy import update

from app.extensions import db
from app.models import AuthSetting
from tests.support import migrated_app


def test_an_rs256_token_opens_the_chat_and_the_agent_sees_who_it_is(customer, console, chat):
    _server, site, _world = chat
    site.context["alice"] = {"plan": "Gold", "open_orders": 2}
    agent = console("ada")
    alice = customer("alice", style="promise")
    alice.write("Where is my parcel?")
    agent.open("Where is my parcel?")
    details = agent.page.get_by_role("definition")
    expect(agent.page.locator("#conv-details")).to_contain_text("Authenticated")
    expect(details.first).to_have_text("yes")
    expect(agent.page.locator("#conv-details div").filter(has_text="plan")).to_contain_text("Gold")
    expect(agent.page.locator("#conv-details div").filter(has_text="open_orders")).to_contain_text("2")


def test_a_token_that_expires_mid_session_is_refreshed_without_losing_a_message(customer, console, chat):
    server, site, world = chat
    with migrated_app(server.instance).app_context():
        db.session.execute(update(AuthSetting).values(clock_skew_seconds=0))
        db.session.commit()
    agent = console("ada")
    alice = customer("alice", lifetime=3)
    alice.write("Before the token expires")
    agent.open("Before the token expires")
    issued = site.tokens_issued
    time.sleep(4.5)
    alice.write("After the token expired")
    assert site.tokens_issued > issued, "the widget asked the page for a fresh token"
    expect(agent.log().locator(".msg").filter(has_text="After the token expired")).to_have_count(1)
    assert alice.bodies() == ["Before the token expires", "After the token expired"]
    expect(alice.page.get_by_role("alert")).to_be_hidden()


def test_a_token_signed_with_the_wrong_key_shows_the_error_state(customer):
    alice = customer("alice", key="wrong")
    alert = alice.page.get_by_role("alert")
    expect(alert).to_contain_text("did not accept your sign-in")
    expect(alert.get_by_role("button", name="Try again")).to_be_visible()


def test_a_token_function_that_never_answers_is_reported_after_10_seconds_and_asked_again(customer):
    started = time.monotonic()
    alice = customer("alice", style="silent")
    alert = alice.page.get_by_role("alert")
    expect(alert).to_contain_text("Signing in to the chat took too long.", timeout=13000)
    assert time.monotonic() - started > 9
    expect(alert.get_by_role("button", name="Try again")).to_be_visible()
    expect(alice.page.locator(".pc-status")).to_have_text("Reconnecting…")
    # Not a dead end: the widget asks the page again by itself, with backoff.
    alice.page.wait_for_function("window.tokenAsks >= 2", timeout=5000)
