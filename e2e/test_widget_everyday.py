"""Everyday widget features (issue 6): typing indicators both ways and links made clickable safely."""

import re

from playwright.sync_api import expect


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
