"""The widget heals itself while its page is open: the network gone, the site's token backend down, a token
function that fails in every way it can, all without a click; and a refusal that is final says so."""

import time

from playwright.sync_api import expect
from sqlalchemy import update

from app.extensions import db
from app.models import AuthSetting
from e2e.conftest import Widget, wait_until
from tests.support import migrated_app

THREE = ["One, typed while it was down", "Two, typed while it was down", "Three, typed while it was down"]


def no_clock_skew(server) -> None:
    """Tokens run out exactly at exp, so a test can have one expire within seconds."""
    with migrated_app(server.instance).app_context():
        db.session.execute(update(AuthSetting).values(clock_skew_seconds=0))
        db.session.commit()


def type_three(widget: Widget) -> None:
    for text in THREE:
        widget.box.fill(text)
        widget.box.press("Enter")
    expect(widget.messages(sender="customer").filter(has_text="while it was down")).to_have_count(3)


def sleep_until(moment: float) -> None:
    """The length of an outage is part of the scenario, not a wait for readiness."""
    time.sleep(max(0.0, moment - time.monotonic()))


def assert_all_three_once_in_order(agent, widget: Widget, first: str) -> None:
    expect(agent.log().locator(".msg")).to_have_count(4)
    assert agent.log().locator(".msg .msg-body").all_inner_texts() == [first, *THREE]
    sent = widget.messages(sender="customer")
    for i, seq in enumerate(["1", "2", "3", "4"]):
        expect(sent.nth(i)).to_have_attribute("data-seq", seq)
    assert widget.bodies() == [first, *THREE]


def test_offline_while_the_token_runs_out_then_online_sends_all_three_with_no_click(chat, customer, console):
    server, site, _world = chat
    no_clock_skew(server)
    agent = console("ada")
    # The README's token function: a fetch to the site's backend, which fails while offline.
    alice = customer("alice", lifetime=8)
    expires = time.monotonic() + 8
    alice.write("Before going offline")
    agent.open("Before going offline")

    alice.page.context.set_offline(True)
    expect(alice.scope.get_by_role("status")).to_have_text("Reconnecting…")
    type_three(alice)
    sleep_until(expires + 1)
    issued = site.tokens_issued
    alice.page.context.set_offline(False)
    back = time.monotonic()

    expect(agent.log().locator(".msg")).to_have_count(4, timeout=10000)
    print(f"offline → online: the agent had all three after {time.monotonic() - back:.1f} s")
    assert site.tokens_issued > issued, "the expired token was replaced by one from the site's backend"
    assert_all_three_once_in_order(agent, alice, "Before going offline")
    expect(alice.page.get_by_role("alert")).to_be_hidden()
    expect(alice.scope.get_by_role("status")).to_have_text("")


def test_the_sites_token_backend_down_for_20_s_while_the_chat_server_restarts(chat, customer, console):
    server, site, _world = chat
    no_clock_skew(server)
    agent = console("ada")
    alice = customer("alice", lifetime=8)
    expires = time.monotonic() + 8
    alice.write("Before the outage")
    agent.open("Before the outage")

    site.token_status = 503
    down = time.monotonic()
    server.stop()
    expect(alice.scope.get_by_role("status")).to_have_text("Reconnecting…")
    type_three(alice)
    sleep_until(expires + 1)
    server.start()
    # The held token has run out: the widget asks the page, whose backend answers 503, and keeps trying.
    wait_until(lambda: site.tokens_refused >= 1, timeout=max(1.0, down + 20 - time.monotonic()))
    sleep_until(down + 20)
    expect(alice.messages(sender="customer").filter(has_text="while it was down").first).to_contain_text("Not sent yet")
    site.token_status = 200
    back = time.monotonic()

    expect(agent.log().locator(".msg")).to_have_count(4, timeout=10000)
    print(
        f"token backend back: the agent had all three after {time.monotonic() - back:.1f} s "
        f"({site.tokens_refused} token requests refused meanwhile)"
    )
    assert_all_three_once_in_order(agent, alice, "Before the outage")
    expect(alice.page.get_by_role("alert")).to_be_hidden()


def test_a_token_function_that_throws_rejects_and_never_answers_is_retried_until_it_works(customer, console):
    agent = console("ada")
    alice = customer("alice", style="flaky")
    alert = alice.page.get_by_role("alert")
    expect(alert).to_contain_text("We could not sign you in to the chat.")
    expect(alice.scope.get_by_role("status")).to_have_text("Reconnecting…")
    expect(alert).to_contain_text("Signing in to the chat took too long.", timeout=15000)
    alice.page.wait_for_function("window.tokenAsks >= 4", timeout=15000)
    expect(alert).to_be_hidden()
    alice.write("Signed in without a click")
    expect(agent.mine().filter(has_text="Signed in without a click")).to_have_count(1)


def test_a_page_on_an_origin_the_workstream_does_not_allow_says_so(chat, contexts):
    _server, site, _world = chat
    page = contexts().new_page()
    # The same site under another name: the workstream allows only http://127.0.0.1:PORT.
    page.goto(site.url("alice").replace("127.0.0.1", "localhost"))
    alert = Widget(page).open().page.get_by_role("alert")
    expect(alert).to_contain_text("The chat is not enabled for this website.")
    expect(alert.get_by_role("button", name="Try again")).to_be_visible()
    expect(page.locator(".pc-status")).to_have_text("")


def test_a_refused_sign_in_is_final_and_not_retried(customer, chat):
    _server, site, _world = chat
    alice = customer("alice", key="wrong")
    alert = alice.page.get_by_role("alert")
    expect(alert).to_contain_text("did not accept your sign-in")
    expect(alice.page.locator(".pc-status")).to_have_text("")
    # Refused twice (the held token, then a fresh one); then it waits for the site to be fixed.
    asked = site.tokens_issued
    alice.page.wait_for_timeout(3000)
    assert site.tokens_issued == asked == 2


def test_a_tag_naming_no_workstream_the_server_knows_says_the_chat_is_not_available(chat, contexts):
    _server, site, _world = chat
    site.pages["/unknown"] = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>'
        f'<script src="{site.chat_url}/widget.js" data-workstream="no-such-workstream" async></script>'
        "</body></html>"
    )
    page = contexts().new_page()
    page.goto(site.origin + "/unknown")
    alert = Widget(page).open().page.get_by_role("alert")
    expect(alert).to_contain_text("This chat is not available.")
    expect(page.locator(".pc-status")).to_have_text("")
