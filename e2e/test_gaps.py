"""Gap-free for what is shown: frames the clients' sockets never got (held back on their way by a
Playwright websocket route in front of the real server) are fetched over HTTP, resumed from the
contiguous cursor, merged from a backlog in parts, and resent after rate_limited or a server_error."""

import json
import re
import secrets
import time
import urllib.request

from playwright.sync_api import Page, WebSocketRoute, expect

from e2e.conftest import Console, Widget

WIDGET_SOCKET = re.compile(r"/ws/widget")
CONSOLE_SOCKET = re.compile(r"/console/ws")


def pump_until(page: Page, predicate, timeout: float = 5.0) -> None:
    """Wait on state the routes below keep in Python; Playwright runs their handlers only while the test
    is inside one of its calls, hence wait_for_timeout rather than sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        page.wait_for_timeout(50)


class Relay:
    """Every socket the page opens goes to the real server through here. `drop(frame)` says which server
    frames never reach the page; `answer(frame, client, server)` may answer a page frame itself (return
    True) instead of passing it on."""

    def __init__(self, page: Page, pattern: re.Pattern):
        self.drop = lambda frame: False
        self.answer = lambda frame, client, server: False
        self.dropped: list[dict] = []
        self.sent: list[dict] = []  # what the page sent, in order, over every socket
        self.sockets: list[WebSocketRoute] = []
        self.rewrite = lambda frame: [frame]
        page.route_web_socket(pattern, self.handle)

    def handle(self, client: WebSocketRoute) -> None:
        server = client.connect_to_server()
        self.sockets.append(client)

        def from_server(message):
            frame = json.loads(message)
            if self.drop(frame):
                self.dropped.append(frame)
                return
            for part in self.rewrite(frame):
                client.send(json.dumps(part))

        def from_page(message):
            frame = json.loads(message)
            self.sent.append(frame)
            if not self.answer(frame, client, server):
                server.send(message)

        server.on_message(from_server)
        client.on_message(from_page)

    def hellos(self) -> list[dict]:
        return [f for f in self.sent if f["type"] == "hello"]


def agent_messages(frame: dict) -> bool:
    return frame["type"] == "message" and frame["message"]["sender"] == "agent"


def open_widget(contexts, site, relay_pattern=WIDGET_SOCKET) -> tuple[Widget, Relay]:
    page = contexts().new_page()
    relay = Relay(page, relay_pattern)
    page.goto(site.url("alice"))
    return Widget(page).open(), relay


def test_agent_messages_the_widget_never_got_are_fetched_when_a_later_one_arrives(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    alice, relay = open_widget(contexts, site)
    alice.write("Hello")
    agent.open("Hello")

    relay.drop = agent_messages
    agent.reply("One, lost on its way")
    agent.reply("Two, lost on its way")
    pump_until(alice.page, lambda: len(relay.dropped) == 2)
    expect(alice.messages(sender="agent")).to_have_count(0)

    relay.drop = lambda frame: False
    agent.reply("Three, the next one")
    expect(alice.log.locator(".pc-body")).to_have_text(
        ["Hello", "One, lost on its way", "Two, lost on its way", "Three, the next one"]
    )
    expect(alice.messages()).to_have_count(4)


def test_after_a_resync_the_hello_resumes_from_the_contiguous_cursor(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    alice, relay = open_widget(contexts, site)
    # No HTTP gap fill: only the reconnect can bring the missing messages.
    alice.page.route(re.compile(r"/messages\?after="), lambda route: route.abort())
    alice.write("Hello")
    agent.open("Hello")

    relay.drop = lambda frame: agent_messages(frame) and frame["message"]["body"].startswith("Lost")
    agent.reply("Lost one")
    agent.reply("Lost two")
    agent.reply("Arrives")
    expect(alice.log.locator(".pc-body")).to_have_text(["Hello", "Arrives"])

    # What the server does when it may have missed live events: resync, then close with 1012.
    relay.sockets[-1].send(json.dumps({"type": "resync"}))
    relay.sockets[-1].close(code=1012, reason="resync")
    pump_until(alice.page, lambda: len(relay.hellos()) == 2)
    hello = relay.hellos()[1]
    assert hello["after"] == 1 and hello["conversation_id"], hello
    expect(alice.log.locator(".pc-body")).to_have_text(["Hello", "Lost one", "Lost two", "Arrives"])
    expect(alice.scope.get_by_role("status")).to_have_text("")


def split_backlog(frame: dict, per_part: int = 2) -> list[dict]:
    """A backlog cut the way the server may cut a big one: consecutive parts, `more` on all but the last,
    one conversation continuing across parts, `reset` repeated."""
    if frame["type"] != "backlog":
        return [frame]
    parts = []
    for entry in frame["conversations"]:
        messages = entry["messages"] or [None]
        for i in range(0, len(messages), per_part):
            chunk = [m for m in messages[i : i + per_part] if m]
            parts.append({**frame, "conversations": [{**entry, "messages": chunk}], "more": True})
    if not parts:
        return [{**frame, "more": False}]
    parts[-1]["more"] = False
    return parts


def test_a_backlog_in_parts_is_merged_and_sends_wait_for_its_last_part(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    alice, relay = open_widget(contexts, site)
    texts = [f"Message {i}" for i in range(1, 8)]
    for text in texts:
        alice.write(text)
    agent.open("Message 7")

    relay.rewrite = split_backlog
    alice.page.reload()
    Widget(alice.page).open()
    expect(alice.log.locator(".pc-body")).to_have_text(texts)
    alice.write("After the parts")
    expect(agent.log().locator(".msg .msg-body")).to_have_text([*texts, "After the parts"])


def test_a_send_refused_as_rate_limited_stays_pending_and_goes_again_after_retry_after(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    alice, relay = open_widget(contexts, site)
    refused: list[float] = []

    def rate_limit_once(frame, client, server):
        if frame["type"] != "send" or refused:
            return False
        refused.append(time.monotonic())
        client.send(
            json.dumps(
                {
                    "type": "error",
                    "code": "rate_limited",
                    "message": "Too many messages; try again shortly.",
                    "client_id": frame["client_id"],
                    "retry_after": 2,
                }
            )
        )
        return True

    relay.answer = rate_limit_once
    alice.box.fill("Sent twice, stored once")
    alice.box.press("Enter")
    sent = alice.messages(sender="customer").last
    pump_until(alice.page, lambda: refused)
    expect(sent).to_contain_text("Sending…")
    expect(sent).to_have_attribute("data-seq", "1", timeout=5000)
    sends = [f for f in relay.sent if f["type"] == "send"]
    assert len(sends) == 2 and sends[0]["client_id"] == sends[1]["client_id"]
    expect(agent.mine().filter(has_text="Sent twice, stored once")).to_have_count(1)
    agent.open("Sent twice, stored once")
    expect(agent.log().locator(".msg")).to_have_count(1)
    expect(sent).not_to_contain_text("Not sent")


def test_a_server_error_closing_the_socket_with_1011_is_healed_by_reconnecting(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    alice, relay = open_widget(contexts, site)
    failed: list[str] = []

    def fail_once(frame, client, server):
        if frame["type"] != "send" or failed:
            return False
        failed.append(frame["client_id"])
        client.send(json.dumps({"type": "error", "code": "server_error", "message": "Something broke."}))
        client.close(code=1011, reason="server_error")
        return True

    relay.answer = fail_once
    alice.write("Through a server error")
    assert len(relay.hellos()) == 2
    expect(agent.mine().filter(has_text="Through a server error")).to_have_count(1)
    expect(alice.page.get_by_role("alert")).to_be_hidden()


def conversation_of(frame: dict) -> int | None:
    if "message" in frame:
        return frame["message"]["conversation_id"]
    if "conversation" in frame:
        return frame["conversation"]["id"]
    return frame.get("conversation_id")


def post_as_customer(site, world, sub: str, body: str) -> dict:
    request = urllib.request.Request(
        f"{site.chat_url}/api/widget/workstreams/{world.workstream_id}/messages",
        data=json.dumps({"client_id": f"c-{secrets.token_hex(8)}", "body": body}).encode(),
        headers={
            "Authorization": f"Bearer {world.token(sub, sub.title())}",
            "Content-Type": "application/json",
            "Origin": site.origin,
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["message"]


def test_the_console_fills_the_gaps_of_a_listed_conversation_it_is_not_showing(chat, contexts, console):
    server, site, world = chat
    page = contexts().new_page()
    relay = Relay(page, CONSOLE_SOCKET)
    email, password = world.agents["ada"]
    agent = Console(page, server).sign_in(email, password)
    post_as_customer(site, world, "alice", "Alice asks")
    bob_id = post_as_customer(site, world, "bob", "Bob asks")["conversation_id"]
    agent.open("Bob asks")
    agent.open("Alice asks")
    bob = agent.mine().filter(has_text="Bob")
    expect(bob).not_to_have_class(re.compile("unread"))

    relay.drop = lambda frame: conversation_of(frame) == bob_id
    post_as_customer(site, world, "bob", "Bob, missed once")
    post_as_customer(site, world, "bob", "Bob, missed twice")
    pump_until(page, lambda: sum(f["type"] == "message" for f in relay.dropped) == 2)
    expect(bob).not_to_have_class(re.compile("unread"))

    # A reconnect (a restart, a resync) refetches the lists and fills every listed conversation's gap.
    relay.drop = lambda frame: False
    relay.sockets[-1].close(code=1012, reason="resync")
    expect(bob).to_have_class(re.compile("unread"), timeout=10000)
    expect(bob.locator(".item-preview")).to_have_text("Bob, missed twice")
    expect(agent.log().locator(".msg .msg-body")).to_have_text(["Alice asks"])
