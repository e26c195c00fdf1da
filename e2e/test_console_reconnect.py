"""The console builds its lists from the snapshot its socket sends on every (re)connect: after its
socket was down while conversations changed, the lists show the new state, each conversation once,
with what was written meanwhile; a queue longer than the console's window shows its first
conversations and how many more wait."""

import re

import pytest
from playwright.sync_api import WebSocketRoute, expect
from sqlalchemy import select, update

from app.extensions import db
from app.models import Conversation, Customer, Workstream
from e2e import test_widget_accessibility as accessibility
from e2e.conftest import Console
from e2e.test_gaps import post_as_customer
from tests.support import app_for
from tests.test_scaleout import AgentSession

RECONNECT_MS = 20_000
axe_script = accessibility.axe_script  # the session fixture, shared


@pytest.fixture
def chat_env() -> dict:
    return {"CONSOLE_QUEUE_WINDOW": "2"}


def names(items) -> list[str]:
    return items.locator(".item-name").all_inner_texts()


class Cable:
    """The console's socket goes to the real server through here; `cut()` closes it and refuses the
    console's reconnects until `mend()`."""

    def __init__(self, page):
        self.cut_off = False
        self.sockets: list[WebSocketRoute] = []
        page.route_web_socket(re.compile(r"/console/ws"), self.handle)

    def handle(self, client: WebSocketRoute) -> None:
        if self.cut_off:
            client.close(code=1012, reason="cut")
            return
        client.connect_to_server()
        self.sockets.append(client)

    def cut(self) -> None:
        self.cut_off = True
        self.sockets[-1].close(code=1012, reason="cut")

    def mend(self) -> None:
        self.cut_off = False


def test_after_a_reconnect_the_console_shows_what_changed_meanwhile_each_once(chat, contexts, axe_script):
    server, site, world = chat
    app = app_for(server.instance)
    with app.app_context():
        # Pick mode: nobody is pushed work, the queue stays as the customers leave it.
        db.session.execute(update(Workstream).where(Workstream.id == world.workstream_id).values(distribution="pick"))
        db.session.commit()
    for sub in ("alice", "bob", "carol", "dave", "erin"):
        post_as_customer(site, world, sub, f"{sub.title()} asks")

    page = contexts().new_page()
    cable = Cable(page)
    Console(page, server).sign_in(*world.agents["ada"])
    queue, mine, waiting = (page.locator(f"#list-{name} li") for name in ("queue", "mine", "waiting"))
    more = page.locator("#more-queue")
    expect(queue).to_have_count(2)
    assert names(queue) == ["Alice", "Bob"]
    expect(more).to_have_text("and 3 more")

    # Ada takes Alice: the window moves onto Carol, whom the console knew only by id until now.
    queue.filter(has_text="Alice").get_by_role("button").click()
    page.get_by_role("button", name="Take", exact=True).click()
    expect(mine).to_have_count(1)
    expect(queue).to_have_count(2)
    assert names(queue) == ["Bob", "Carol"]
    expect(queue.filter(has_text="Carol").locator(".item-preview")).to_have_text("Carol asks")
    expect(more).to_have_text("and 2 more")

    # The socket goes down; meanwhile Bo takes Bob, Ada (in another tab) moves Alice to waiting, Dave
    # writes again. None of it reaches this console live.
    cable.cut()
    expect(page.locator("#connection")).to_have_text("Connection lost. Reconnecting…")
    with app.app_context():
        ids = dict(
            db.session.execute(
                select(Customer.sub, Conversation.id)
                .join(Conversation.customer)
                .where(Conversation.workstream_id == world.workstream_id)
            ).all()
        )
        db.engine.dispose()
    server.world = world
    AgentSession(server, "bo").post(server, f"/conversations/{ids['bob']}/take")
    AgentSession(server, "ada").post(server, f"/conversations/{ids['alice']}/park")
    post_as_customer(site, world, "dave", "Dave, again")
    assert names(queue) == ["Bob", "Carol"] and names(mine) == ["Alice"]
    cable.mend()

    expect(waiting).to_have_count(1, timeout=RECONNECT_MS)
    expect(mine).to_have_count(0)
    expect(queue).to_have_count(2)
    assert names(waiting) == ["Alice"] and names(queue) == ["Carol", "Dave"]
    expect(queue.filter(has_text="Dave").locator(".item-preview")).to_have_text("Dave, again")
    expect(more).to_have_text("and 1 more")

    # Live again: Frank joins the queue behind the window, and Alice comes back to Ada.
    post_as_customer(site, world, "frank", "Frank asks")
    expect(more).to_have_text("and 2 more")
    post_as_customer(site, world, "alice", "Alice is back")
    expect(mine).to_have_count(1)
    expect(waiting).to_have_count(0)
    expect(mine.locator(".badge")).to_have_text("Returned")
    expect(mine.locator(".item-preview")).to_have_text("Alice is back")
    assert names(queue) == ["Carol", "Dave"]
    page.reload()
    expect(mine).to_have_count(1)
    expect(queue).to_have_count(2)
    expect(more).to_have_text("and 2 more")
    assert accessibility.serious_violations(page, axe_script) == []
