"""A site owner runs the chat from the admin pages in Chromium: workstreams with their hours, messages,
look and embed snippet; authentication settings with keys and the token tester; agents; the audit log;
an agent's own profile. Every admin page passes axe, and other agents get 403."""

import json
import re
import time

import jwt
import pytest
from playwright.sync_api import Page, expect

from app.agents import add_agent
from app.extensions import db
from e2e.conftest import Console, HostSite, Widget
from e2e.test_widget_accessibility import serious_violations
from tests.support import ChatServer, free_port, migrated_app, npm_package, rsa_key_pair, seed

ROOT_EMAIL, ROOT_PASSWORD = "root@example.com", "root password, long enough"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One server for the module: a persistent workstream "Support" on a host site, agents Ada and Bo,
    and the site owner Root (an admin with no capacity, so no conversation is pushed to them)."""
    instance = tmp_path_factory.mktemp("admin")
    host_port = free_port()
    app = migrated_app(instance)
    world = seed(app, [f"http://127.0.0.1:{host_port}"], {"ada": "Ada", "bo": "Bo"})
    with app.app_context():
        add_agent(ROOT_EMAIL, "Root", "admin", ROOT_PASSWORD, capacity=0)
        db.engine.dispose()
    server = ChatServer(instance, env={"SCHEDULER_INTERVAL": "0.5"}).start()
    host = HostSite(server.url, world, host_port)
    yield server, host, world
    host.close()
    server.stop()


def sign_in(page: Page, server: ChatServer, email: str, password: str, path: str = "/admin/") -> Page:
    page.goto(server.url + path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    return page


@pytest.fixture
def owner(contexts, site):
    server, _host, _world = site
    page = sign_in(contexts().new_page(), server, ROOT_EMAIL, ROOT_PASSWORD)
    expect(page.get_by_role("heading", name="Setting up the chat")).to_be_visible()
    return page


def open_workstream(page: Page, name: str, tab: str | None = None) -> None:
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Workstreams").click()
    page.get_by_role("link", name=name, exact=True).click()
    if tab:
        page.get_by_role("navigation", name="Workstream").get_by_role("link", name=tab).click()


def test_a_workstream_is_created_and_its_settings_hours_and_messages_edited(owner, site):
    _server, host, _world = site
    page = owner
    page.get_by_role("link", name="Workstreams").first.click()
    page.get_by_label("Name").fill("Evening help")
    page.get_by_label(re.compile("^Live")).check()
    page.get_by_label("Origins allowed to embed it").fill("shop.example")
    page.get_by_role("button", name="Create workstream").click()
    origins = page.get_by_label("Origins allowed to embed it")
    expect(origins).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-allowed_origins")).to_contain_text("is not an origin such as https://shop.example")
    expect(page.get_by_label("Name")).to_have_value("Evening help")
    origins.fill(host.origin)
    page.get_by_role("button", name="Create workstream").click()
    expect(page.get_by_role("heading", name="Evening help")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("The workstream was created")

    cost = page.get_by_label("Capacity cost (units per active conversation)")
    cost.fill("0")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#error-capacity_cost")).to_have_text("capacity_cost must be an integer from 1 to 10000.")
    page.get_by_label("Capacity cost (units per active conversation)").fill("50")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.get_by_label("Capacity cost (units per active conversation)")).to_have_value("50")

    page.get_by_role("link", name="Operating hours").click()
    page.get_by_label("Always open (no hours)").uncheck()
    page.get_by_label("Time zone").select_option("Europe/Helsinki")
    preview = page.locator("#hours-preview")
    page.get_by_label("Monday").fill("9 to 5")
    expect(preview).to_contain_text("write each interval as 08:00-16:00")
    page.get_by_label("Monday").fill("")
    page.get_by_label("Tuesday").fill("08:00-12:00, 13:00-16:00")
    expect(preview).to_have_text(re.compile(r"^(Open now · closes|Closed now · opens) \w{3} .*\(Europe/Helsinki\)$"))
    page.get_by_label("Holidays").fill("2026-12-24\n2026-12-25")
    page.get_by_role("button", name="Save hours").click()
    expect(page.get_by_role("status").first).to_have_text("Operating hours saved.")
    page.reload()
    expect(page.get_by_label("Tuesday")).to_have_value("08:00-12:00, 13:00-16:00")
    expect(page.get_by_label("Holidays")).to_have_value("2026-12-24\n2026-12-25")

    page.get_by_role("link", name="Automated messages").click()
    position = page.locator("fieldset", has_text="Queue position")
    position.get_by_label("English text").fill("Number {Position} for {QueueName}, {plan} plan")
    expect(position.locator("#preview-text_position_en")).to_contain_text("Number 3 for Evening help, {plan} plan")
    joined = page.locator("fieldset", has_text="An agent joined")
    expect(joined.locator("#preview-text_agent_joined_fi")).to_contain_text("Ada liittyi keskusteluun.")
    joined.get_by_label("English text").fill("{AgentNmae} is here")
    page.get_by_role("button", name="Save messages").click()
    expect(page.locator("#error-text_agent_joined_en")).to_contain_text("unknown placeholder {AgentNmae}")
    page.locator("#f-text_agent_joined_en").fill("{AgentName} is here")
    page.locator("fieldset", has_text="Average wait").get_by_label("Send “Average wait”").uncheck()
    page.get_by_role("button", name="Save messages").click()
    expect(page.get_by_role("status")).to_have_text("Automated messages saved.")
    expect(page.locator("#f-text_agent_joined_en")).to_have_value("{AgentName} is here")
    expect(page.get_by_label("Send “Average wait”")).not_to_be_checked()


def test_the_accent_title_greeting_and_side_show_in_the_widget_on_the_host_page(owner, site, contexts):
    _server, host, _world = site
    page = owner
    open_workstream(page, "Support", "Appearance")
    accent = page.get_by_label("Accent colour")
    accent.fill("#777777")
    expect(page.locator("#contrast-accent")).to_contain_text("Refused when saved")
    page.get_by_role("button", name="Save appearance").click()
    expect(page.locator("#error-accent")).to_contain_text("the best is 4.48:1")
    page.get_by_label("Accent colour").fill("#0a7d32")
    expect(page.locator("#contrast-accent")).to_contain_text("White text, contrast")
    english = page.get_by_role("group", name="English")
    english.get_by_label("Title").fill("Shop help")
    english.get_by_label("Greeting").fill("Hello! Ask us anything about your order.")
    expect(page.locator("#mock-greeting")).to_have_text("Hello! Ask us anything about your order.")
    english.get_by_label("“Usually replies within …” line").fill("We usually reply within a day.")
    page.get_by_role("group", name="Finnish").get_by_label("Greeting").fill("Hei! Kysy tilauksestasi.")
    page.get_by_label("Bottom left").check()
    page.get_by_role("button", name="Save appearance").click()
    expect(page.get_by_role("status")).to_contain_text("Appearance saved")

    shopper = contexts().new_page()
    shopper.set_viewport_size({"width": 1200, "height": 800})
    shopper.goto(host.url("zed"))
    launcher = shopper.get_by_role("button", name="Open chat")
    expect(launcher).to_have_css("background-color", "rgb(10, 125, 50)")
    box = launcher.bounding_box()
    assert box["x"] < 600, "the launcher sits bottom left"
    widget = Widget(shopper).open()
    panel = shopper.get_by_role("dialog", name="Chat")
    expect(panel.locator(".pc-title")).to_have_text("Shop help")
    expect(panel.get_by_text("Hello! Ask us anything about your order.")).to_be_visible()
    expect(panel.get_by_text("We usually reply within a day.")).to_be_visible()
    widget.write("Where is my parcel?")
    expect(panel.get_by_text("Hello! Ask us anything about your order.")).to_be_hidden()

    finnish = contexts().new_page()
    finnish.goto(host.url("yrjo", lang="fi"))
    Widget(finnish, lang="fi").open()
    expect(finnish.get_by_text("Hei! Kysy tilauksestasi.")).to_be_visible()


def test_the_embed_snippet_is_copied_and_origins_checked(site, browser):
    server, host, world = site
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = sign_in(context.new_page(), server, ROOT_EMAIL, ROOT_PASSWORD)
        open_workstream(page, "Support", "Embed")
        snippet = page.get_by_label("Snippet")
        expected = (
            f'<script src="{server.url}/widget.js" data-workstream="{world.workstream_id}"'
            ' data-auth-function="getChatToken" async></script>'
        )
        expect(snippet).to_have_value(expected)
        page.get_by_role("button", name="Copy snippet").click()
        expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
        assert page.evaluate("navigator.clipboard.readText()") == expected

        page.get_by_label("Site origin").fill("https://elsewhere.example")
        page.get_by_role("button", name="Check").click()
        expect(page.locator("#origin-result")).to_contain_text("https://elsewhere.example is not allowed")
        page.get_by_label("Site origin").fill(host.origin + "/")
        page.get_by_role("button", name="Check").click()
        expect(page.locator("#origin-result")).to_have_text(f"{host.origin} is allowed to embed this workstream.")
    finally:
        context.close()


def test_a_key_is_pasted_a_token_tested_and_once_retired_refused_in_the_widget(owner, site, contexts):
    server, host, _world = site
    page = owner
    private_key, public_key = rsa_key_pair()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Authentication").click()
    page.get_by_label("Name").fill("Rotating shop")
    page.get_by_label("Issuer (iss)").fill("https://shop.example")
    page.get_by_label("Key id (kid)").fill("k1")
    page.get_by_label("Public key (PEM)").fill("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----")
    page.get_by_role("button", name="Create setting").click()
    expect(page.locator("#error-public_key")).to_have_text("public_key is not a readable PEM public key.")
    page.get_by_label("Public key (PEM)").fill(public_key)
    page.get_by_role("button", name="Create setting").click()
    expect(page.get_by_role("heading", name="Rotating shop")).to_be_visible()
    keys = page.get_by_role("table").first
    expect(keys).to_contain_text("RS256")
    expect(keys.locator(".fingerprint")).to_have_text(re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$"))

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Workstreams").click()
    page.get_by_label("Name").fill("Rotating support")
    choice = page.locator("#f-auth_setting_id option", has_text="Rotating shop").get_attribute("value")
    page.get_by_label("Authentication setting").select_option(choice)
    page.get_by_label("Origins allowed to embed it").fill(host.origin)
    page.get_by_role("button", name="Create workstream").click()
    expect(page.get_by_role("heading", name="Rotating support")).to_be_visible()
    workstream_id = page.url.rsplit("/", 1)[1].split("?")[0]

    now = int(time.time())
    claims = {"sub": "rita", "name": "Rita", "iss": "https://shop.example", "iat": now, "exp": now + 600}
    token = jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": "k1"})
    host.pages["/rotating"] = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>'
        f'<script nonce="{HostSite.NONCE}">window.getChatToken = function (cb) {{ cb({json.dumps(token)}); }};</script>'
        f'<script src="{server.url}/widget.js" data-workstream="{workstream_id}" data-auth-function="getChatToken"'
        " async></script></body></html>"
    )
    shopper = contexts().new_page()
    warnings: list[str] = []
    shopper.on("console", lambda message: warnings.append(message.text) if message.type == "warning" else None)
    shopper.goto(host.origin + "/rotating")
    rita = Widget(shopper).open()
    rita.write("Hello from Rita")

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Authentication").click()
    page.get_by_role("link", name="Rotating shop").click()
    page.get_by_label("A token from your backend").fill(token)
    page.get_by_role("button", name="Test token").click()
    result = page.locator("#token-result")
    expect(result.get_by_role("status")).to_have_text("Accepted: customer 'rita'.")
    expect(result.get_by_role("row", name="iss")).to_contain_text('"https://shop.example"')
    expect(result.get_by_role("row", name="exp")).to_contain_text("UTC")

    page.get_by_role("button", name="Retire key k1").click()
    expect(page.get_by_role("status")).to_contain_text("Key k1 retired")
    alert = shopper.get_by_role("dialog", name="Chat").get_by_role("alert")
    expect(alert).to_contain_text("did not accept your sign-in")
    assert any("token_unknown_kid: No current key with kid 'k1'" in w for w in warnings), warnings
    assert not any(token in w for w in warnings), "the token itself is never logged"

    page.get_by_label("A token from your backend").fill(token)
    page.get_by_role("button", name="Test token").click()
    expect(page.locator("#token-result").get_by_role("alert")).to_have_text(
        "token_unknown_kid: No current key with kid 'k1' for this site."
    )


def test_an_agent_is_added_then_disabled_and_leaves_the_transfer_list(owner, site, contexts):
    server, host, world = site
    page = owner
    page.get_by_role("link", name="Agents").first.click()
    form = page.locator("form", has=page.get_by_role("button", name="Add agent"))
    form.get_by_label("Name").fill("Cy")
    form.get_by_label("Email").fill("cy@example.com")
    form.get_by_label("Password (optional)").fill("too short")
    form.get_by_role("button", name="Add agent").click()
    expect(page.locator("#error-password")).to_contain_text("12")
    form = page.locator("form", has=page.get_by_role("button", name="Add agent"))
    form.get_by_label("Password (optional)").fill("")
    form.get_by_label("Capacity (units)").fill("100")
    form.get_by_role("button", name="Add agent").click()
    expect(page.get_by_role("heading", name="Cy", exact=True)).to_be_visible()
    password = page.locator("#password-value").inner_text()

    # Other tests of this module leave customers in the queue: room enough for all of them.
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="Ada").click()
    page.get_by_label("Capacity (units)").fill("-1")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#error-capacity")).to_have_text("capacity must be an integer from 0 to 10000.")
    page.get_by_label("Capacity (units)").fill("1000")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    page.get_by_role("link", name="Agents", exact=True).first.click()
    page.get_by_role("link", name="Cy", exact=True).click()

    email, ada_password = world.agents["ada"]
    ada = Console(contexts().new_page(), server).sign_in(email, ada_password)
    shopper = contexts().new_page()
    shopper.goto(host.url("quinn"))
    Widget(shopper).open().write("Can someone help me?")
    ada.open("Can someone help me?")
    ada.reply("Let me see.")
    cy = Console(contexts().new_page(), server).sign_in("cy@example.com", password)

    ada.page.get_by_role("button", name="Transfer…").click()
    choices = ada.page.get_by_label("Transfer to")
    expect(choices.locator("option", has_text="Cy")).to_have_count(1)
    ada.page.get_by_role("button", name="Cancel").click()

    page.get_by_role("button", name="Disable Cy").click()
    expect(page.get_by_role("status")).to_contain_text("Disabled: signed out everywhere")
    expect(cy.page).to_have_url(re.compile(r"/console/login"))
    ada.page.get_by_role("button", name="Transfer…").click()
    expect(choices.locator("option", has_text="Bo")).to_have_count(1)
    expect(choices.locator("option", has_text="Cy")).to_have_count(0)
    ada.page.get_by_role("button", name="Cancel").click()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Agents").click()
    expect(page.get_by_role("row", name=re.compile("Cy")).last).to_contain_text("disabled")

    page.get_by_role("link", name="Ada").click()
    page.get_by_role("button", name="Delete Ada").click()
    expect(page.get_by_role("alert")).to_have_text("This agent has conversations: disable them instead.")
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="Cy", exact=True).click()
    page.get_by_role("button", name="Delete Cy").click()
    expect(page.get_by_role("status")).to_have_text("Cy was deleted.")


def test_the_audit_log_shows_who_changed_what_from_the_pages_and_the_cli(owner, site):
    server, _host, _world = site
    page = owner
    open_workstream(page, "Support")
    page.get_by_label("Name").fill("Customer care")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    app = migrated_app(server.instance)
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["create-agent", "dot@example.com", "--name", "Dot"])
        assert result.exit_code == 0, result.output
        db.engine.dispose()

    page.get_by_role("link", name="Audit log").click()
    rows = page.get_by_role("row")
    newest = rows.nth(1)
    expect(newest).to_contain_text("command line")
    expect(newest).to_contain_text("agent.create")
    expect(newest).to_contain_text('"dot@example.com"')
    renamed = rows.filter(has_text="workstream.update").filter(has_text='"Support" → "Customer care"')
    expect(renamed.first).to_contain_text(ROOT_EMAIL)
    # The other tests of this module find the workstream by its name.
    open_workstream(page, "Customer care")
    page.get_by_label("Name").fill("Support")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")


def test_an_agent_changes_their_display_name_in_their_profile(site, contexts):
    server, _host, world = site
    email, password = world.agents["bo"]
    bo = Console(contexts().new_page(), server).sign_in(email, password)
    bo.page.get_by_role("link", name="Profile").click()
    name = bo.page.get_by_label("Display name")
    name.fill("   ")
    name.evaluate("input => input.removeAttribute('required')")
    bo.page.get_by_role("button", name="Save").click()
    expect(bo.page.get_by_role("alert")).to_have_text("name must be 1 to 120 characters.")
    bo.page.get_by_label("Display name").fill("Bo Berg")
    bo.page.get_by_role("button", name="Save").click()
    expect(bo.page.get_by_role("status")).to_contain_text("now see you as Bo Berg")
    bo.page.get_by_role("link", name="Back to the console").click()
    expect(bo.page.locator(".agent-name")).to_have_text("Bo Berg")
    bo.page.get_by_role("link", name="Profile").click()
    bo.page.get_by_label("Display name").fill("Bo")
    bo.page.get_by_role("button", name="Save").click()
    expect(bo.page.get_by_role("status")).to_contain_text("now see you as Bo.")


@pytest.fixture(scope="module")
def axe_script():
    return npm_package("axe-core@4", "axe-core/axe.min.js") / "node_modules" / "axe-core" / "axe.min.js"


ADMIN_PAGES = [
    "/admin/",
    "/admin/workstreams",
    "/admin/auth-settings",
    "/admin/agents",
    "/admin/privacy",
    "/admin/audit",
]


def test_every_admin_page_passes_axe_and_other_agents_get_403(site, contexts, axe_script):
    server, _host, world = site
    page = sign_in(contexts().new_page(), server, ROOT_EMAIL, ROOT_PASSWORD)
    expect(page.get_by_role("heading", name="Setting up the chat")).to_be_visible()
    workstream = f"/admin/workstreams/{world.workstream_id}"
    paths = ADMIN_PAGES + [
        workstream,
        workstream + "/hours",
        workstream + "/messages",
        workstream + "/appearance",
        workstream + "/embed?origin=https://elsewhere.example",
        f"/admin/auth-settings/{world.auth_setting_id}",
        "/admin/agents/1",
    ]
    for path in paths:
        page.goto(server.url + path)
        assert serious_violations(page, axe_script) == [], path
    page.goto(server.url + workstream)
    page.get_by_label("Capacity cost (units per active conversation)").fill("0")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#error-capacity_cost")).to_be_visible()
    assert serious_violations(page, axe_script) == [], "a page with a refusal on it"

    email, password = world.agents["ada"]
    agent = sign_in(contexts().new_page(), server, email, password, "/console/")
    expect(agent.get_by_role("heading", name="My conversations")).to_be_visible()
    expect(agent.get_by_role("link", name="Admin")).to_have_count(0)
    for path in paths:
        response = agent.goto(server.url + path)
        assert response.status == 403, path
        expect(agent.get_by_role("heading", name="Admins only")).to_be_visible()
    profile = agent.goto(server.url + "/console/profile")
    assert profile.status == 200
    assert serious_violations(agent, axe_script) == [], "/console/profile"
