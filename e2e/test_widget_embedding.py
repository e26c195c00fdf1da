"""The widget as a guest on someone else's page: the command queue, one launcher however often
it is included, no globals but its namespace, hostile CSS and a strict Content-Security-Policy."""

import json
import time

from playwright.sync_api import expect

from e2e.conftest import HostSite, Widget, wait_until


def inline(js: str) -> str:
    return f'<script nonce="{HostSite.NONCE}">{js}</script>'


# The snippet README.md and widget/README.md tell sites to paste; kept identical to it.
STUB = inline("""
  window.PersistentChat = window.PersistentChat || { q: [] };
  ["open", "close", "toggle", "setLocale", "on"].forEach(function (m) {
    PersistentChat[m] = PersistentChat[m] || function () { PersistentChat.q.push([m, [].slice.call(arguments)]); };
  });
""")

# What a host page does with it before the widget's script has arrived.
EARLY_CALLS = inline("""
  window.seen = [];
  ["ready", "open", "close", "message", "unread", "error"].forEach(function (name) {
    PersistentChat.on(name, function (event) {
      seen.push([name, event.workstream, event.count, event.message && event.message.body].filter(
        function (part) { return part != null; }).join(":"));
    });
  });
  PersistentChat.setLocale("fi");
  PersistentChat.open();
""")


def wait_for(page, predicate, timeout: float = 5.0) -> None:
    """Like wait_until, but lets Playwright deliver page events (websocket frames) while it waits."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


def widget_frames(page):
    """Every frame the page's widget sockets send and receive, parsed."""
    sent, received = [], []

    def watch(ws):
        if "/ws/widget" in ws.url:
            ws.on("framesent", lambda payload: sent.append(json.loads(payload)))
            ws.on("framereceived", lambda payload: received.append(json.loads(payload)))

    page.on("websocket", watch)
    return sent, received


def test_calls_queued_before_the_script_loads_are_replayed_in_order_and_events_reach_the_page(contexts, chat, console):
    _server, site, world = chat
    ws = world.workstream_id
    site.head = STUB + EARLY_CALLS
    page = contexts().new_page()
    sent, received = widget_frames(page)
    page.goto(site.url("alice"))

    # setLocale("fi") and open() ran once the script arrived: the panel is open, in Finnish.
    expect(page.get_by_role("dialog", name="Chat")).to_be_visible()
    expect(page.get_by_role("button", name="Pienennä chat")).to_be_visible()
    expect(page.get_by_role("textbox", name="Viesti")).to_be_focused()
    wait_until(lambda: page.evaluate("seen") == [f"ready:{ws}", f"open:{ws}"])
    wait_for(page, lambda: any(f["type"] == "hello" for f in sent))
    assert [f["locale"] for f in sent if f["type"] == "hello"] == ["fi"]

    page.evaluate("PersistentChat.setLocale('en')")
    expect(page.get_by_role("button", name="Minimize chat")).to_be_visible()
    wait_for(page, lambda: {"type": "locale", "locale": "en"} in sent)

    alice = Widget(page)
    alice.write("Where is my parcel?")
    page.evaluate("PersistentChat.close()")
    expect(page.get_by_role("dialog", name="Chat")).to_be_hidden()
    agent = console("ada")
    agent.open("Where is my parcel?")
    agent.reply("On its way")
    expect(alice.launcher.locator(".pc-unread")).to_have_text("1")
    page.evaluate("PersistentChat.toggle()")
    expect(alice.launcher.locator(".pc-unread")).to_be_hidden()

    later = [f"close:{ws}", f"unread:{ws}:1", f"message:{ws}:On its way", f"unread:{ws}:0", f"open:{ws}"]
    wait_until(lambda: page.evaluate("seen")[2:] == later)
    assert not [f for f in received if f["type"] == "error"]


def test_including_the_script_twice_gives_one_launcher_and_no_global_but_the_namespace(contexts, chat):
    server, site, world = chat
    site.copies = 0
    page = contexts().new_page()
    page.goto(site.url("alice"))
    before = set(page.evaluate("Object.keys(window)"))
    page.evaluate(
        """([src, workstream]) => new Promise((resolve) => {
            (window.PersistentChat = { q: [["on", ["ready", resolve]]] });
            for (let i = 0; i < 2; i++) {
                const tag = document.createElement("script");
                tag.src = src;
                tag.async = true;
                tag.dataset.workstream = workstream;
                tag.dataset.authFunction = "getChatToken";
                document.body.appendChild(tag);
            }
        })""",
        [server.url + "/widget.js", world.workstream_id],
    )
    alice = Widget(page).open()
    alice.write("Only one of me")
    expect(page.locator("[data-persistent-chat]")).to_have_count(1)
    expect(page.get_by_role("button", name="Close chat")).to_have_count(1)
    assert set(page.evaluate("Object.keys(window)")) - before == {"PersistentChat"}


HOSTILE_CSS = "<style>* { all: unset !important } div { display: none } button { font-size: 40px }</style>"


def test_hostile_host_css_does_not_reach_the_widget(chat, customer, console):
    _server, site, _world = chat
    site.head = HOSTILE_CSS
    agent = console("ada")
    alice = customer("alice")
    size = alice.launcher.evaluate("b => [b.offsetWidth, b.offsetHeight, getComputedStyle(b).position]")
    assert size == [56, 56, "fixed"]
    panel = alice.page.get_by_role("dialog", name="Chat").bounding_box()
    assert panel["width"] == 360 and panel["height"] > 300
    send = alice.page.get_by_role("button", name="Send", exact=True)
    assert send.evaluate("b => getComputedStyle(b).fontSize") != "40px"

    alice.write("Can you read me through their styles?")
    agent.open("Can you read me")
    agent.reply("Loud and clear")
    expect(alice.messages(sender="agent")).to_contain_text("Loud and clear")


def test_a_host_page_with_a_strict_content_security_policy(chat, contexts, console):
    server, site, _world = chat
    chat_ws = server.url.replace("http", "ws", 1)
    site.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{HostSite.NONCE}' {server.url}; "
        f"connect-src {server.url} {chat_ws}; style-src 'none'; img-src 'none'"
    )
    page = contexts().new_page()
    refused = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(site.url("alice", style="inline"))
    agent = console("ada")
    alice = Widget(page).open()
    alice.write("Hello from a locked-down page")
    agent.open("locked-down page")
    agent.reply("Hello back")
    expect(alice.messages(sender="agent")).to_contain_text("Hello back")
    # The widget's own styles apply (a constructed stylesheet is not an inline style to the policy).
    assert page.get_by_role("dialog", name="Chat").bounding_box()["width"] == 360
    assert refused == []


def test_set_locale_relabels_everything_already_on_screen(customer):
    alice = customer("alice")
    alice.write("Hello in English")
    alice.page.context.set_offline(True)
    alice.box.fill("Written offline")
    alice.box.press("Enter")
    status = alice.scope.get_by_role("status")
    expect(status).to_have_text("Reconnecting…")

    alice.page.evaluate("PersistentChat.setLocale('fi-FI')")
    expect(status).to_have_text("Yhdistetään uudelleen…")
    expect(alice.page.get_by_role("textbox", name="Viesti")).to_be_visible()
    expect(alice.page.get_by_role("log", name="Viestit").locator(".pc-sender")).to_have_text(["Sinä", "Sinä"])
    pending = alice.page.get_by_role("log", name="Viestit").locator(".pc-msg").last
    expect(pending).to_contain_text("Ei vielä lähetetty: odotetaan yhteyttä.")
    expect(pending.get_by_role("button", name="Yritä nyt")).to_be_visible()

    alice.page.context.set_offline(False)
    expect(pending).to_have_attribute("data-seq", "2")
    expect(status).to_have_text("")


def test_the_page_hears_about_an_error_the_widget_shows(chat, contexts):
    _server, site, world = chat
    site.head = STUB + inline(
        "window.errors = []; PersistentChat.on('error', function (e) { errors.push(e); }); PersistentChat.open();"
    )
    page = contexts().new_page()
    page.goto(site.url("alice", key="wrong"))  # the site signs with a key the chat does not know
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The chat did not accept your sign-in.")
    assert page.evaluate("errors") == [
        {"workstream": world.workstream_id, "message": "The chat did not accept your sign-in."}
    ]
