"""The console on a phone (390 × 844), in Chromium: the lists and the conversation are two views with a
back button, nothing is wider than the screen, everything stays reachable, and axe finds nothing serious.
"""

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from app import labels
from app.extensions import db
from app.models import Agent
from e2e import test_widget_accessibility as accessibility
from e2e.conftest import Console, HostSite, Widget
from tests.support import ChatServer, free_port, migrated_app, seed

axe_script = accessibility.axe_script  # the session fixture, shared
serious_violations = accessibility.serious_violations
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    """Ada is a supervisor, so the team's conversations and the reports are on her phone too; a label
    makes the conversation's label menu show."""
    instance = tmp_path_factory.mktemp("phone")
    host_port = free_port()
    app = migrated_app(instance)
    world = seed(app, [f"http://127.0.0.1:{host_port}"], {"ada": "Ada"})
    with app.app_context():
        db.session.execute(update(Agent).values(role="supervisor"))
        db.session.commit()
        labels.create(None, {"name": "Mobile", "colour": "#1f5f99"})
        db.engine.dispose()
    server = ChatServer(instance).start()
    site = HostSite(server.url, world, host_port)
    yield server, site, world
    site.close()
    server.stop()


def fits_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px screen"


def within_the_screen(page: Page, locator) -> None:
    expect(locator).to_be_visible()
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box


def test_an_agent_answers_on_a_phone_with_the_lists_and_the_conversation_as_two_views(contexts, chat, axe_script):
    server, site, world = chat
    ada = Console(contexts(**PHONE).new_page(), server).sign_in(*world.agents["ada"])
    page = ada.page
    lists = page.get_by_role("navigation", name="Conversations")
    conversation = page.locator("#conversation")
    expect(lists).to_be_visible()
    expect(page.get_by_text("Select a conversation to read and reply.")).to_be_hidden()
    # The top bar and every list are there in the lists view.
    for name in ("Profile", "My canned responses", "Change password"):
        within_the_screen(page, page.get_by_role("link", name=name))
    within_the_screen(page, page.get_by_label("Presence"))
    within_the_screen(page, page.get_by_role("button", name="Sign out"))
    for heading in ("My conversations", "Waiting", "Queue", "Recently ended", "All conversations", "Reports", "Team"):
        within_the_screen(page, lists.get_by_role("heading", name=heading, exact=True))
    fits_the_screen(page)
    assert serious_violations(page, axe_script) == []

    customer_page = contexts().new_page()
    customer_page.goto(site.url("zoe"))
    customer = Widget(customer_page).open()
    customer.write("Can you help me from my phone?")
    item = ada.mine().filter(has_text="zoe")
    item.get_by_role("button").click()

    # The conversation alone, with its heading focused and a way back.
    expect(conversation.get_by_role("heading", name="zoe")).to_be_focused()
    expect(lists).to_be_hidden()
    expect(page.get_by_label("Presence")).to_be_hidden()
    back = page.get_by_role("button", name="Back to conversations")
    expect(back).to_be_visible()
    expect(ada.log().locator(".msg").filter(has_text="Can you help me")).to_be_visible()
    for control in (
        back,
        page.get_by_role("button", name="Move to waiting"),
        page.get_by_role("button", name="Transfer…"),
        page.get_by_role("button", name="End conversation"),
        page.locator("#label-picker summary"),
        page.get_by_label("Reply"),
        conversation.get_by_role("button", name="Send"),
        page.get_by_label("Internal note"),
        page.get_by_role("button", name="Add note"),
    ):
        within_the_screen(page, control)
    fits_the_screen(page)
    assert serious_violations(page, axe_script) == []
    ada.reply("Of course, what do you need?")
    expect(customer.messages(sender="agent")).to_contain_text("Of course, what do you need?")
    customer.write("My password")
    expect(ada.log().locator(".msg").filter(has_text="My password")).to_be_visible()

    back.click()
    expect(lists).to_be_visible()
    expect(conversation).to_be_hidden()
    expect(item.get_by_role("button")).to_be_focused()
    assert "#conversation" not in page.url
    # What the customer writes meanwhile marks the conversation unread in the list.
    customer.write("Are you still there?")
    expect(item).to_have_class(re.compile(r"\bunread\b"))
    expect(item).to_contain_text("Are you still there?")
    item.get_by_role("button").click()
    expect(ada.log().locator(".msg").filter(has_text="Are you still there?")).to_be_visible()
    expect(page.get_by_label("Reply")).to_be_visible()
    back.click()
    expect(item).not_to_have_class(re.compile(r"\bunread\b"))

    # The report's nine columns scroll in their own box; the page stays one screen wide.
    reports = page.locator("#reports-section")
    reports.get_by_role("button", name="Show report").click()
    table = reports.get_by_role("table", name="Report")
    expect(table.get_by_role("row")).to_have_count(2)
    region = page.get_by_role("region", name="Report table")
    assert region.evaluate("n => n.scrollWidth > n.clientWidth"), "the table fits: nothing to scroll"
    region.focus()
    page.keyboard.press("ArrowRight")
    fits_the_screen(page)
    assert serious_violations(page, axe_script) == []
