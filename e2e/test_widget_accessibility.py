"""Accessibility and mobile (issue 6): the widget by keyboard alone, axe-core on the open widget and on
the console pages, and a full-screen panel on a phone."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from e2e.conftest import Widget
from tests.support import npm_package

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core, installed from npm once into .venv (not committed), injected into pages by the tests."""
    return npm_package("axe-core@4", "axe-core/axe.min.js") / "node_modules" / "axe-core" / "axe.min.js"


def serious_violations(page, axe_script: Path) -> list[str]:
    # Evaluated over the debugging protocol, so the console's own CSP (script-src 'self') allows it.
    page.evaluate(axe_script.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_the_widget_works_by_keyboard_alone(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    page = contexts().new_page()
    page.goto(site.url("alice"))
    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_visible()

    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    page.keyboard.type("Typed without a mouse")
    page.keyboard.press("Enter")
    alice = Widget(page)
    expect(alice.messages(sender="customer")).to_have_attribute("data-seq", "1")

    # The log is announced politely; the send button, the paperclip and the log are reachable with Tab.
    expect(alice.log).to_have_attribute("aria-live", "polite")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Attach files")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(alice.log).to_be_focused()

    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Chat")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(agent.mine().filter(has_text="Typed without a mouse")).to_have_count(1)


def test_axe_finds_nothing_serious_on_the_open_widget_and_the_console(chat, customer, console, axe_script):
    _server, _site, _world = chat
    agent = console("ada")
    alice = customer("alice")
    alice.write("Checking https://example.com for accessibility")
    agent.open("Checking")
    agent.reply("Looks fine")
    expect(alice.messages(sender="agent")).to_have_count(1)
    assert serious_violations(alice.page, axe_script) == []
    # A message waiting for the connection, with its state line and Retry button, passes too.
    alice.page.context.set_offline(True)
    alice.box.fill("Waiting for the network")
    alice.box.press("Enter")
    expect(alice.page.get_by_role("button", name="Retry now")).to_be_visible()
    assert serious_violations(alice.page, axe_script) == []
    alice.page.context.set_offline(False)
    assert serious_violations(agent.page, axe_script) == []

    login = agent.page.context.browser.new_context().new_page()
    login.goto(agent.server.url + "/console/login")
    expect(login.get_by_label("Email")).to_be_visible()
    assert serious_violations(login, axe_script) == []
    login.context.close()


def test_on_a_phone_the_open_panel_fills_the_screen(chat, browser):
    _server, site, _world = chat
    site.head = '<meta name="viewport" content="width=device-width, initial-scale=1">'
    phone = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        page.goto(site.url("alice"))
        alice = Widget(page).open()
        panel = page.get_by_role("dialog", name="Chat").bounding_box()
        assert (panel["x"], panel["y"], panel["width"], panel["height"]) == (0, 0, 375, 667)
        alice.write("Written on a phone")
        page.get_by_role("button", name="Minimize chat").click()
        expect(page.get_by_role("dialog", name="Chat")).to_be_hidden()
        expect(page.get_by_role("button", name="Open chat")).to_be_visible()
    finally:
        phone.close()
