"""Everyday widget features: typing indicators both ways and links made clickable safely."""

import re

from playwright.sync_api import expect

from e2e.conftest import Widget


def test_typing_shows_on_the_other_side_and_goes_away(customer, console):
    agent = console("ada")
    alice = customer("alice")
    alice.write("Quick question")
    agent.open("Quick question")
    console_typing = agent.page.locator("#typing")
    widget_typing = alice.scope.locator(".pc-typing")

    alice.box.press_sequentially("About my")
    expect(console_typing).to_have_text(re.compile(r"^alice is typing…$"))
    alice.box.press("Enter")
    expect(console_typing).to_be_empty()  # the message itself ends it

    agent.page.get_by_label("Reply").press_sequentially("Let me")
    expect(widget_typing).to_have_text("Ada is typing…")
    # Nothing more typed: it expires after 6 s (and was never a message).
    expect(widget_typing).to_be_empty(timeout=8000)
    expect(alice.messages(sender="agent")).to_have_count(0)


def test_links_are_clickable_only_for_http_and_markup_stays_text_both_ways(customer, console):
    agent = console("ada")
    alice = customer("alice")
    alice.write("Tracking: https://example.com/track?id=7. Not javascript:alert(1)")
    agent.open("Tracking:")
    reply = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> see (http://example.org/help)'
    agent.reply(reply)
    expect(alice.messages(sender="agent")).to_contain_text(reply)
    expect(alice.scope.locator(".pc-agent")).to_have_text("Ada")
    expect(alice.scope.locator(".pc-avatar")).to_have_text("A")

    customer_links = [
        alice.messages(sender="customer").locator("a"),
        agent.log().locator(".msg").filter(has_text="Tracking:").locator("a"),
    ]
    agent_links = [
        alice.messages(sender="agent").locator("a"),
        agent.log().locator(".msg").filter(has_text="see (").locator("a"),
    ]
    for links, url in [(lnk, "https://example.com/track?id=7") for lnk in customer_links] + [
        (lnk, "http://example.org/help") for lnk in agent_links
    ]:
        expect(links).to_have_count(1)
        expect(links).to_have_text(url)
        expect(links).to_have_attribute("href", url)
        expect(links).to_have_attribute("target", "_blank")
        expect(links).to_have_attribute("rel", "noopener noreferrer nofollow")
    for page in (alice.page, agent.page):
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src=x], .pc-body script, .msg-body script").count() == 0


# Counts the tones the page starts, since a headless browser has no speakers to listen to.
COUNT_TONES = """
window.__tones = 0;
const start = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function () { window.__tones += 1; return start.apply(this, arguments); };
"""


def test_a_sound_for_messages_arriving_while_closed_only_when_the_site_turns_it_on(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    pages = {}
    for sound in ("on", "off"):
        site.attributes = ' data-sound="on"' if sound == "on" else ""
        context = contexts()
        context.add_init_script(COUNT_TONES)
        page = context.new_page()
        page.goto(site.url("alice"))
        pages[sound] = Widget(page).open()
    alice = pages["on"]
    alice.write("Ping me when you answer")
    for widget in pages.values():
        widget.page.get_by_role("button", name="Minimize chat").click()
    agent.open("Ping me when you answer")
    agent.reply("Answered")
    for widget in pages.values():
        expect(widget.launcher.locator(".pc-unread")).to_be_visible()
    # One tone per message that arrived while closed (automated ones count too).
    unread = int(alice.launcher.locator(".pc-unread").inner_text())
    assert unread >= 1 and pages["on"].page.evaluate("window.__tones") == unread
    assert pages["off"].page.evaluate("window.__tones") == 0


def test_a_finnish_page_gets_finnish_labels_and_finnish_times(chat, contexts):
    _server, site, _world = chat
    page = contexts().new_page()
    page.goto(site.url("alice", lang="fi"))
    page.get_by_role("button", name="Avaa chat").click()
    page.get_by_role("textbox", name="Viesti").fill("Hei")
    page.get_by_role("button", name="Lähetä").click()
    mine = page.get_by_role("log", name="Viestit").locator(".pc-msg")
    expect(mine).to_have_attribute("data-seq", "1")
    expect(mine.locator(".pc-sender")).to_have_text("Sinä")
    # Finnish clock times say "klo" and use a period, with no leading zero (klo 9.05), English ones a colon.
    expect(mine.locator("time")).to_have_text(re.compile(r"^klo (\d|[1-9]\d)\.\d{2}$"))
    expect(page.get_by_role("button", name="Sulje chat")).to_be_visible()
