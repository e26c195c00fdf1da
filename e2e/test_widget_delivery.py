"""Never lose, never double (issue 6): messages typed offline reach the agent once each and in order;
two tabs of one customer both show everything, and reading in one clears the unread count in the other."""

import re

from playwright.sync_api import expect

from e2e.conftest import Widget


def test_three_messages_typed_offline_reach_the_agent_once_each_in_order(customer, console):
    agent = console("ada")
    alice = customer("alice")
    alice.write("Before going offline")
    agent.open("Before going offline")

    alice.page.context.set_offline(True)
    expect(alice.scope.get_by_role("status")).to_have_text("Reconnecting…")
    typed = ["One, typed offline", "Two, typed offline", "Three, typed offline"]
    for text in typed:
        alice.box.fill(text)
        alice.box.press("Enter")
    pending = alice.messages(sender="customer").filter(has_text="typed offline")
    expect(pending).to_have_count(3)
    for i in range(3):
        expect(pending.nth(i)).to_contain_text("Not sent yet: waiting for the connection.")
        expect(pending.nth(i).get_by_role("button", name="Retry now")).to_be_visible()
        expect(pending.nth(i)).not_to_have_attribute("data-seq", re.compile("."))
    expect(agent.log().locator(".msg")).to_have_count(1)

    alice.page.context.set_offline(False)
    for i, seq in enumerate(["2", "3", "4"]):
        expect(pending.nth(i)).to_have_attribute("data-seq", seq)
        expect(pending.nth(i).get_by_role("button", name="Retry now")).to_have_count(0)
    expect(agent.log().locator(".msg")).to_have_count(4)
    agent.reply("Got all three")
    expect(alice.messages(sender="agent")).to_have_count(1)
    bodies = agent.log().locator(".msg .msg-body").all_inner_texts()
    assert bodies == ["Before going offline", *typed, "Got all three"]
    assert alice.bodies() == bodies


def test_two_tabs_show_every_message_and_reading_in_one_clears_the_other(contexts, chat, console):
    _server, site, _world = chat
    agent = console("ada")
    browser = contexts()
    first, second = browser.new_page(), browser.new_page()
    first.goto(site.url("alice"))
    second.goto(site.url("alice"))
    tab1, tab2 = Widget(first).open(), Widget(second)
    tab1.write("Written in the first tab")
    agent.open("Written in the first tab")
    tab1.page.get_by_role("button", name="Minimize chat").click()

    agent.reply("Reply while both tabs are closed")
    for tab in (tab1, tab2):
        expect(tab.launcher.locator(".pc-unread")).to_have_text("1")
        expect(tab.launcher).to_have_accessible_description("1 unread messages")

    tab1.open()
    expect(tab1.launcher.locator(".pc-unread")).to_be_hidden()
    expect(tab2.launcher.locator(".pc-unread")).to_be_hidden()

    tab2.open()
    expected = ["Written in the first tab", "Reply while both tabs are closed"]
    expect(tab2.log.locator(".pc-body")).to_have_text(expected)
    tab2.write("Written in the second tab")
    expect(tab1.log.locator(".pc-body")).to_have_text([*expected, "Written in the second tab"])
    expect(agent.log().locator(".msg").filter(has_text="Written in the second tab")).to_have_count(1)


def test_three_messages_typed_while_the_server_restarts_reach_the_agent_once_each_in_order(chat, customer, console):
    server, _site, _world = chat
    agent = console("ada")
    alice = customer("alice")
    alice.write("Before the restart")
    agent.open("Before the restart")

    server.stop()
    expect(alice.scope.get_by_role("status")).to_have_text("Reconnecting…")
    typed = ["One, during the restart", "Two, during the restart", "Three, during the restart"]
    for text in typed:
        alice.box.fill(text)
        alice.box.press("Enter")
    server.start()

    pending = alice.messages(sender="customer").filter(has_text="during the restart")
    for i, seq in enumerate(["2", "3", "4"]):
        expect(pending.nth(i)).to_have_attribute("data-seq", seq, timeout=20000)
    expect(agent.log().locator(".msg")).to_have_count(4, timeout=20000)
    agent.reply("All three arrived")
    expect(alice.messages(sender="agent")).to_have_count(1)
    bodies = agent.log().locator(".msg .msg-body").all_inner_texts()
    assert bodies == ["Before the restart", *typed, "All three arrived"]
    assert alice.bodies() == bodies
