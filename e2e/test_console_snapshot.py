"""The console builds its lists from the snapshot its socket sends on every (re)connect: after the
server was stopped, changed behind the console's back and started again, the lists show the new
state, each conversation once, with what was written meanwhile; a queue longer than the console's
window shows its first conversations and how many more wait."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from app import conversations, routing
from app.extensions import db
from app.models import Agent, Customer, Workstream
from e2e.conftest import Console
from e2e.test_gaps import post_as_customer
from tests.support import app_for

RECONNECT_MS = 30_000


@pytest.fixture
def chat_env() -> dict:
    return {"CONSOLE_QUEUE_WINDOW": "2"}


def names(items) -> list[str]:
    return items.locator(".item-name").all_inner_texts()


def test_after_a_restart_the_console_shows_what_changed_meanwhile_each_once(chat, contexts, tmp_path):
    server, site, world = chat
    app = app_for(tmp_path)
    with app.app_context():
        # Pick mode: nobody is pushed work, the queue stays as the customers leave it.
        db.session.execute(update(Workstream).values(distribution="pick"))
        db.session.commit()
    for sub in ("alice", "bob", "carol", "dave", "erin"):
        post_as_customer(site, world, sub, f"{sub.title()} asks")

    page = contexts().new_page()
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

    server.stop()
    expect(page.locator("#connection")).to_have_text("Connection lost. Reconnecting…")
    with app.app_context():
        ids = {c.sub: c.id for c in db.session.scalars(select(Customer))}
        bo = db.session.scalar(select(Agent).where(Agent.email == world.agents["bo"][0]))
        bob_conversation = conversations.current_conversation(ids["bob"], world.workstream_id)
        routing.take(bo, bob_conversation.id)
        alice_conversation = conversations.current_conversation(ids["alice"], world.workstream_id)
        me = db.session.scalar(select(Agent).where(Agent.email == world.agents["ada"][0]))
        conversations.park(me, alice_conversation.id)
        conversations.post_customer_message(world.workstream_id, ids["dave"], "d2", "Dave, again")
        db.session.remove()
        db.engine.dispose()
    server.start()
    expect(page.locator("#connection")).to_have_text("", timeout=RECONNECT_MS)

    expect(waiting).to_have_count(1)
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
