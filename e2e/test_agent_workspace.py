"""The agent's workspace in Chromium: internal notes, and the reply box that waits for the conversation.

One server for the module; each test uses its own customers so that they do not see each other's work.
"""

import re
import time
import urllib.request

import pytest
from playwright.sync_api import expect

from e2e.conftest import Console, HostSite, Widget
from tests.support import ChatServer, free_port, migrated_app, seed
from tests.test_sockets import Peer


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    instance = tmp_path_factory.mktemp("workspace")
    host_port = free_port()
    world = seed(migrated_app(instance), [f"http://127.0.0.1:{host_port}"], {"ada": "Ada", "bo": "Bo"})
    server = ChatServer(instance, env={"PRESENCE_GRACE_SECONDS": str(6 * 3600)}).start()
    site = HostSite(server.url, world, host_port)
    yield server, site, world
    site.close()
    server.stop()


def widget_get(server, site, world, path: str, sub: str) -> bytes:
    request = urllib.request.Request(
        f"{server.url}/api/widget/workstreams/{world.workstream_id}{path}",
        headers={"Authorization": f"Bearer {world.token(sub)}", "Origin": site.origin},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def test_an_internal_note_is_seen_by_agents_and_by_no_route_a_customer_has(contexts, chat):
    server, site, world = chat
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("nora"))
    customer = Widget(page).open()
    customer.write("My parcel never came")
    ada.open("My parcel never came")
    conversation_id = int(re.search(r"#conversation-(\d+)", ada.page.url).group(1))

    # A colleague watching the same conversation, and the customer's own socket listening to every frame.
    bo = Console(contexts().new_page(), server).sign_in(*world.agents["bo"])
    bo.page.goto(f"{server.url}/console/#conversation-{conversation_id}")
    expect(bo.log().locator(".msg").filter(has_text="My parcel never came")).to_be_visible()
    listener = Peer(server.url.replace("http", "ws") + f"/ws/widget?workstream={world.workstream_id}", site.origin)
    listener.send({"type": "hello", "token": world.token("nora"), "conversation_id": conversation_id, "after": 1})
    assert listener.recv()["type"] == "welcome"

    secret = "Refund approved by the team lead, do not promise a date"
    ada.page.get_by_label("Internal note").fill(secret)
    ada.page.get_by_role("button", name="Add note").click()
    note = ada.log().locator(".note").filter(has_text=secret)
    expect(note).to_have_count(1)
    expect(note).to_contain_text("Internal note")
    expect(ada.page.get_by_label("Internal note")).to_have_value("")
    expect(bo.log().locator(".note").filter(has_text=secret)).to_contain_text("Ada")

    ada.reply("We are on it, Nora.")
    expect(customer.messages(sender="agent")).to_contain_text("We are on it, Nora.")
    # The note sits between the message it followed and the reply after it.
    texts = ada.log().locator(".msg, .note").all_inner_texts()
    assert [i for i, t in enumerate(texts) if secret in t] == [1] and "We are on it" in texts[2]

    frames = []
    while (raw := listener.ws.receive(timeout=5)) is not None:
        frames.append(raw)
        if "We are on it" in raw and '"type":"message"' in raw.replace(" ", ""):
            break
    listener.close()
    assert any("We are on it" in f for f in frames) and not any(secret in f for f in frames)
    assert not any(secret in body for body in customer.bodies())

    page.reload()  # the backlog
    customer = Widget(page).open()
    expect(customer.messages(sender="agent")).to_contain_text("We are on it, Nora.")
    assert not any(secret in body for body in customer.bodies())
    for path in (
        "/conversations",
        f"/conversations/{conversation_id}/messages?after=0",
        f"/conversations/{conversation_id}/transcript",
    ):
        assert secret.encode() not in widget_get(server, site, world, path, "nora")

    # Reopened later, the note is still there in its place.
    ada.page.reload()
    expect(ada.log().locator(".note").filter(has_text=secret)).to_have_count(1)


def test_the_reply_box_appears_only_once_the_conversation_has_loaded(contexts, chat):
    server, site, world = chat
    bo = Console(contexts().new_page(), server).sign_in(*world.agents["bo"])
    bo.page.get_by_label("Presence").select_option("offline")  # so that Ada gets the next conversation
    expect(bo.page.locator("#presence-dot")).to_have_attribute("data-presence", "offline")
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("omar"))
    Widget(page).open().write("Is the shop open on Sunday?")
    item = ada.mine().filter(has_text="open on Sunday")
    expect(item).to_have_count(1)
    # Hold the conversation's response: until it arrives there is nothing to reply to.
    held = []
    ada.page.route(re.compile(r".*/console/api/conversations/\d+$"), lambda route: held.append(route))
    item.get_by_role("button").first.click()
    expect(ada.page.get_by_role("heading", name="omar")).to_be_visible()
    expect(ada.page.get_by_label("Reply")).to_be_hidden()
    expect(ada.page.get_by_label("Internal note")).to_be_hidden()
    deadline = time.monotonic() + 5
    while not held and time.monotonic() < deadline:
        ada.page.wait_for_timeout(50)  # lets Playwright call the route handler
    assert held, "the console never asked for the conversation"
    held[0].continue_()
    expect(ada.page.get_by_label("Reply")).to_be_visible()
    ada.reply("Yes, 10 to 16.")
