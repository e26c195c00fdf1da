"""Issue 4 in Chromium: the waiting state, the returning customer and operating hours, with the server's
clock moved forward while it runs."""

import json
import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect
from sqlalchemy import update

from app.extensions import db
from app.models import Workstream
from tests.support import migrated_app

DAY = 24 * 3600


def test_parked_conversation_returns_to_the_same_agent_a_day_later(customer, console, chat):
    server, _site, _world = chat
    ada = console("ada")
    meter = ada.page.get_by_role("meter", name="Capacity")
    expect(meter).to_have_attribute("aria-valuenow", "0")

    alice = customer("alice")
    alice.write("Can you check my invoice?")
    ada.open("Can you check my invoice?")
    ada.reply("I will look into it and get back to you.")
    expect(meter).to_have_attribute("aria-valuenow", "34")

    ada.page.get_by_role("button", name="Move to waiting").click()
    expect(ada.page.locator("#list-waiting li").filter(has_text="look into it")).to_have_count(1)
    expect(ada.mine()).to_have_count(0)
    expect(meter).to_have_attribute("aria-valuenow", "0")
    alice.page.context.close()

    bo = console("bo")
    server.move_clock(DAY)
    notifications = ada.page.evaluate("document.body.dataset.notifications || '0'")

    phone = customer("alice")
    expect(phone.messages()).to_have_count(2)
    phone.write("Thanks, I'm back. Any news?")

    returned = ada.mine().filter(has_text="Any news?")
    expect(returned).to_have_count(1)
    expect(ada.mine().first).to_contain_text("Any news?")
    expect(returned.locator(".badge")).to_have_text("Returned")
    expect(ada.page.locator("body")).not_to_have_attribute("data-notifications", notifications)
    expect(meter).to_have_attribute("aria-valuenow", "34")
    expect(ada.page.locator("#list-waiting li")).to_have_count(0)
    ada.open("Any news?")
    history = ada.log().locator(".msg")
    expect(history).to_have_count(3)
    expect(history.first).to_contain_text("Can you check my invoice?")
    expect(history.last).to_contain_text("Thanks, I'm back. Any news?")

    for section in ("#list-mine", "#list-waiting", "#list-queue", "#list-recent"):
        expect(bo.page.locator(f"{section} li").filter(has_text="alice")).to_have_count(0)
        expect(bo.page.locator(f"{section} li").filter(has_text="Any news?")).to_have_count(0)


def opening_in(minutes: int) -> tuple[dict, float]:
    """Operating hours (UTC) that open `minutes` from now for half an hour, every day, and the seconds
    until they do."""
    now = datetime.now(UTC)
    start = (now + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    if start.hour * 60 + start.minute > 23 * 60:  # keep the window inside one day
        start = start.replace(hour=23, minute=0) - timedelta(hours=1)
        minutes = int((start - now).total_seconds() // 60)
    end = start + timedelta(minutes=30)
    window = [[start.strftime("%H:%M"), end.strftime("%H:%M")]]
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    spec = {"timezone": "UTC", "weekly": {day: window for day in days}, "holidays": []}
    return spec, (start - now).total_seconds()


def test_outside_hours_the_customer_writes_and_the_conversation_is_routed_when_hours_begin(customer, console, chat):
    server, _site, _world = chat
    spec, until_open = opening_in(120)
    with migrated_app(server.instance).app_context():
        db.session.execute(update(Workstream).values(hours=json.dumps(spec)))
        db.session.commit()

    alice = customer("alice")
    notice = alice.page.locator(".pc-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(re.compile("away right now and back"))
    alice.write("Hello, are you there?")

    ada = console("ada")
    expect(ada.page.locator("#list-queue li").filter(has_text="Hello, are you there?")).to_have_count(1)
    expect(ada.mine()).to_have_count(0)

    server.move_clock(until_open + 5)
    expect(ada.mine().filter(has_text="Hello, are you there?")).to_have_count(1, timeout=10000)
    expect(ada.mine().first.locator(".badge")).to_have_text("New")
    expect(alice.page.locator(".pc-agent")).to_have_text(re.compile("Ada"))


def make_live_and_closed(server, hide: bool) -> None:
    spec, _ = opening_in(120)
    with migrated_app(server.instance).app_context():
        db.session.execute(update(Workstream).values(mode="live", hours=json.dumps(spec), hide_when_closed=hide))
        db.session.commit()


def test_a_live_chat_outside_hours_shows_its_offline_state(customer, chat):
    server, _site, _world = chat
    make_live_and_closed(server, hide=False)
    visitor = customer("visitor")
    expect(visitor.page.locator(".pc-notice")).to_contain_text("The chat is closed right now. We are back")
    expect(visitor.box).to_be_disabled()
    expect(visitor.page.get_by_role("button", name="Send", exact=True)).to_be_disabled()


def test_a_live_chat_outside_hours_can_be_hidden(contexts, chat):
    server, site, _world = chat
    make_live_and_closed(server, hide=True)
    page = contexts().new_page()
    page.goto(site.url("visitor"))
    expect(page.locator("[data-persistent-chat]")).to_be_hidden()
    expect(page.get_by_role("button", name="Open chat")).to_be_hidden()
