"""A live widget stores nothing before its visitor opens it: no visitor token asked for, no
sessionStorage entry, no customer row; the first open creates them and the chat works; a reload in
the same session continues it."""

from playwright.sync_api import expect
from sqlalchemy import func, select

from app import workstreams
from app.extensions import db
from app.models import Customer
from e2e.conftest import Widget, wait_until
from tests.support import migrated_app


def anonymous_customers(app) -> int:
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Customer).where(Customer.auth_setting_id.is_(None)))
        db.session.remove()
        return count


def test_a_page_view_stores_nothing_and_the_first_open_starts_the_visitor(contexts, console, chat):
    server, site, world = chat
    app = migrated_app(server.instance)
    with app.app_context():
        site.live_workstream_id = workstreams.create(
            {"name": "Live help", "mode": "live", "allowed_origins": [site.origin]}
        ).id
    # Earlier tests of the module share the server: only customers added from here on count.
    before = anonymous_customers(app)
    agent = console("ada")
    page = contexts().new_page()
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/visitors" in request.url else None)
    page.goto(site.url("alice"))
    live = Widget(page, site.live_workstream_id)
    expect(live.scope.get_by_role("button", name="Open chat")).to_be_visible()
    # The preview gave the title without a token.
    expect(live.scope.locator(".pc-title")).to_have_text("Live help")
    # The signed-in persistent widget on the same page has connected meanwhile: the page is settled.
    expect(Widget(page, world.workstream_id).launcher).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert asked == []
    assert page.evaluate("Object.keys(sessionStorage)") == []
    assert anonymous_customers(app) == before

    live.open()
    wait_until(lambda: anonymous_customers(app) == before + 1)
    assert len(asked) == 1
    assert page.evaluate("Object.keys(sessionStorage)") == [f"persistent-chat:{site.live_workstream_id}:visitor"]
    live.write("Do you ship to Oulu?")
    agent.open("ship to Oulu")
    agent.reply("Yes.")
    expect(live.messages(sender="agent")).to_contain_text("Yes.")

    # A reload in the same browser session is the same visitor: it connects at once, with its history.
    page.reload()
    live = Widget(page, site.live_workstream_id).open()
    expect(live.messages(sender="agent")).to_contain_text("Yes.")
    assert len(asked) == 1 and anonymous_customers(app) == before + 1

    # Another page view elsewhere, never opened, adds nobody.
    other = contexts().new_page()
    other.goto(site.url("bob"))
    expect(Widget(other, site.live_workstream_id).launcher).to_be_visible()
    other.wait_for_load_state("networkidle")
    assert anonymous_customers(app) == before + 1
