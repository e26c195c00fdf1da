"""Labels and canned responses kept on their pages and used in a conversation, in Chromium: the site
owner adds a label and a shared canned response on the admin pages, an agent adds their own on "My
canned responses", then uses both while answering a customer on the host site. Every new page passes axe.
"""

import pytest
from playwright.sync_api import expect

from app.agents import add_agent
from app.extensions import db
from e2e import test_widget_accessibility as accessibility
from e2e.conftest import Console, HostSite, Widget
from e2e.test_admin_site import ROOT_EMAIL, ROOT_PASSWORD, sign_in
from tests.support import ChatServer, free_port, migrated_app, seed

axe_script = accessibility.axe_script  # the session fixture, shared
serious_violations = accessibility.serious_violations


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Agent Ada and the site owner Root (an admin with no capacity: no conversation is pushed to them)."""
    instance = tmp_path_factory.mktemp("setup")
    host_port = free_port()
    app = migrated_app(instance)
    world = seed(app, [f"http://127.0.0.1:{host_port}"], {"ada": "Ada"})
    with app.app_context():
        add_agent(ROOT_EMAIL, "Root", "admin", ROOT_PASSWORD, capacity=0)
        db.engine.dispose()
    server = ChatServer(instance).start()
    host = HostSite(server.url, world, host_port)
    yield server, host, world
    host.close()
    server.stop()


def test_an_admin_adds_a_label_and_a_canned_response_an_agent_adds_their_own_and_uses_both(contexts, site, axe_script):
    server, host, world = site
    owner = sign_in(contexts().new_page(), server, ROOT_EMAIL, ROOT_PASSWORD)
    nav = owner.get_by_role("navigation", name="Admin")

    nav.get_by_role("link", name="Labels").click()
    expect(owner.get_by_role("heading", name="Labels", exact=True)).to_be_visible()
    expect(owner.get_by_text("No labels yet.")).to_be_visible()
    owner.get_by_label("Name").fill("Urgent")
    owner.get_by_label("Colour").fill("#b00020")
    owner.get_by_role("button", name="Add label").click()
    expect(owner.get_by_role("status")).to_have_text("Added the label Urgent.")
    chip = owner.get_by_role("table").locator(".label-chip", has_text="Urgent")
    expect(chip).to_have_css("background-color", "rgb(176, 0, 32)")
    expect(chip).to_have_css("color", "rgb(255, 255, 255)")
    owner.get_by_label("Name").fill("Urgent")
    owner.get_by_role("button", name="Add label").click()
    expect(owner.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(owner.locator("#error-name")).to_have_text("There already is a label 'Urgent'.")
    assert serious_violations(owner, axe_script) == []
    owner.get_by_role("link", name="Urgent").click()
    expect(owner.get_by_role("heading", name="Urgent")).to_be_visible()
    assert serious_violations(owner, axe_script) == []

    nav.get_by_role("link", name="Canned responses").click()
    expect(owner.get_by_text("No shared canned responses yet.")).to_be_visible()
    owner.get_by_label("Shortcut").fill("hello")
    owner.get_by_label("Workstream").select_option(label="Support")
    text = owner.get_by_label("Text")
    text.fill("Hello {CustomerNmae}, this is {AgentName}.")
    owner.get_by_role("button", name="Add canned response").click()
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(owner.locator("#error-body")).to_contain_text("Unknown placeholder {CustomerNmae}")
    expect(text).to_have_value("Hello {CustomerNmae}, this is {AgentName}.")
    expect(owner.get_by_label("Shortcut")).to_have_value("hello")
    assert serious_violations(owner, axe_script) == []
    text.fill("Hello {CustomerName}, this is {AgentName}. About order {order}?")
    owner.get_by_role("button", name="Add canned response").click()
    expect(owner.get_by_role("status")).to_have_text("Added /hello: every agent can insert it now.")
    row = owner.get_by_role("row").filter(has_text="/hello")
    expect(row).to_contain_text("Any language")
    expect(row).to_contain_text("Support")
    row.get_by_role("link", name="/hello").click()
    expect(owner.get_by_role("heading", name="/hello")).to_be_visible()
    expect(owner.get_by_label("Workstream")).to_have_value(world.workstream_id)
    assert serious_violations(owner, axe_script) == []

    nav.get_by_role("link", name="Audit log").click()
    log = owner.get_by_role("table")
    expect(log.get_by_role("row").filter(has_text="canned.create")).to_contain_text("canned response /hello")
    expect(log.get_by_role("row").filter(has_text="label.create")).to_contain_text("label Urgent")

    # The agent's own, on the page beside the profile.
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    ada.page.get_by_role("link", name="My canned responses").click()
    expect(ada.page.get_by_role("heading", name="My canned responses")).to_be_visible()
    shared = ada.page.get_by_role("region", name="Shared by the admins")
    expect(shared.get_by_role("row").filter(has_text="/hello")).to_be_visible()
    ada.page.get_by_label("Shortcut").fill("/thanks")
    ada.page.get_by_label("Language").select_option(label="English")
    ada.page.get_by_label("Text").fill("Thanks for waiting, {CustomerName}!")
    ada.page.get_by_role("button", name="Add canned response").click()
    expect(ada.page.get_by_role("status")).to_have_text("Added /thanks: type it after / in the reply box.")
    mine = ada.page.get_by_role("table", name="Mine")
    expect(mine.get_by_role("row").filter(has_text="/thanks")).to_contain_text("English")
    assert serious_violations(ada.page, axe_script) == []
    mine.get_by_role("link", name="/thanks").click()
    expect(ada.page.get_by_role("heading", name="/thanks")).to_be_visible()
    ada.page.get_by_label("Text").fill("Thanks for waiting, {CustomerNam}!")
    ada.page.get_by_role("button", name="Save").click()
    expect(ada.page.locator("#error-body")).to_contain_text("Unknown placeholder {CustomerNam}")
    assert serious_violations(ada.page, axe_script) == []
    ada.page.get_by_label("Text").fill("Thanks for waiting, {CustomerName}!")
    ada.page.get_by_role("button", name="Save").click()
    expect(ada.page.get_by_role("status")).to_have_text("Saved.")
    ada.page.get_by_role("link", name="My canned responses").click()
    ada.page.get_by_role("link", name="Back to the console").click()
    expect(ada.page.get_by_role("heading", name="My conversations")).to_be_visible()

    # Both, in a conversation.
    host.context["pia"] = {"order": "A-123"}
    page = contexts().new_page()
    page.goto(host.url("pia"))
    customer = Widget(page).open()
    customer.write("Where is my parcel?")
    ada.open("Where is my parcel?")
    reply = ada.page.get_by_label("Reply")
    menu = ada.page.get_by_role("listbox", name="Canned responses")
    reply.press_sequentially("/")
    expect(menu.get_by_role("option")).to_have_text(
        ["/hello Hello pia, this is Ada. About order A-123?", "/thanks Thanks for waiting, pia!"]
    )
    reply.press_sequentially("h")
    reply.press("Enter")
    expect(reply).to_have_value("Hello pia, this is Ada. About order A-123?")
    reply.press("Enter")
    expect(customer.messages(sender="agent")).to_contain_text("Hello pia, this is Ada. About order A-123?")
    reply.press_sequentially("/th")
    reply.press("Tab")
    expect(reply).to_have_value("Thanks for waiting, pia!")
    reply.press("Enter")
    expect(customer.messages(sender="agent").last).to_contain_text("Thanks for waiting, pia!")

    ada.page.locator("#label-picker summary").click()
    ada.page.get_by_role("group", name="Labels on this conversation").get_by_label("Urgent").check()
    expect(ada.page.get_by_role("list", name="Labels").get_by_role("listitem")).to_have_text(["Urgent"])
    expect(ada.mine().filter(has_text="pia").locator(".label-chip")).to_have_text(["Urgent"])

    other = contexts().new_page()
    other.goto(host.url("quentin"))
    Widget(other).open().write("Nothing urgent here")
    expect(ada.mine().filter(has_text="Nothing urgent")).to_have_count(1)
    search = ada.page.get_by_role("search", name="Search conversations")
    search.get_by_text("Filters").click()
    search.get_by_label("Label").select_option(label="Urgent")
    search.get_by_role("button", name="Search").click()
    results = ada.page.locator("#search-results li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("pia")
    expect(results.first.locator(".label-chip")).to_have_text(["Urgent"])
