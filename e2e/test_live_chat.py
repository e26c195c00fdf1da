"""Live chat beside persistent chat on one host page (issue 5, first part): an anonymous visitor chats,
ends the chat, downloads the transcript; the persistent widget never offers an end control."""

from pathlib import Path

from playwright.sync_api import expect

from app import workstreams
from e2e.conftest import Widget
from tests.support import migrated_app


def test_an_anonymous_visitor_ends_a_live_chat_and_keeps_the_transcript(contexts, console, chat):
    server, site, world = chat
    with migrated_app(server.instance).app_context():
        site.live_workstream_id = workstreams.create(
            {"name": "Live help", "mode": "live", "allowed_origins": [site.origin]}
        ).id
    agent = console("ada")
    page = contexts().new_page()
    page.goto(site.url("alice"))
    persistent = Widget(page, world.workstream_id)
    live = Widget(page, site.live_workstream_id).open()
    expect(live.scope.locator(".pc-title")).to_have_text("Live help")

    live.write("Hi, do you ship to Oulu?")
    agent.open("ship to Oulu")
    agent.reply("Yes, in two days.")
    expect(live.messages(sender="agent")).to_contain_text("Yes, in two days.")
    expect(live.messages(sender="system")).to_contain_text("Ada joined the chat.")
    expect(persistent.scope.get_by_role("button", name="End chat")).to_have_count(0)

    page.reload()
    live = Widget(page, site.live_workstream_id).open()
    expect(live.messages()).to_have_count(3)  # the visitor token is kept for the browser session

    live.scope.get_by_role("button", name="End chat").click()
    live.scope.get_by_role("alertdialog").get_by_role("button", name="End chat").click()
    expect(live.log.locator(".pc-divider")).to_have_text("Conversation ended")
    expect(agent.page.locator("#list-recent li").filter(has_text="two days")).to_have_count(1)

    with page.expect_download() as download:
        live.scope.get_by_role("button", name="Download transcript").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert "You: Hi, do you ship to Oulu?" in text and "Ada: Yes, in two days." in text
    assert "System: Ada joined the chat." in text

    live.scope.get_by_role("button", name="Start a new chat").click()
    live.write("One more question")
    first, last = live.messages().first, live.messages().last
    assert first.get_attribute("data-conversation") != last.get_attribute("data-conversation")
    persistent.open()
    expect(persistent.scope.get_by_role("button", name="End chat")).to_have_count(0)
    expect(persistent.messages()).to_have_count(0)
