"""An agent's account as people use it: changing one's password in the console, and an admin disabling
an agent, who is signed out on the spot and leaves everyone's team list."""

import json
import re
import urllib.request

from playwright.sync_api import expect

from app.agents import add_agent
from e2e.conftest import Console
from tests.support import console_cookie, migrated_app

ROOT_EMAIL, ROOT_PASSWORD = "root@example.com", "root password, long enough"


def admin_api(server, method: str, path: str, body: dict | None = None) -> dict:
    """What an admin's tools send: the admin JSON API with a console session and its CSRF token."""
    cookie = console_cookie(server.url, ROOT_EMAIL, ROOT_PASSWORD)
    page = urllib.request.urlopen(urllib.request.Request(server.url + "/console/", headers={"Cookie": cookie}))
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode()).group(1)
    request = urllib.request.Request(
        server.url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Cookie": cookie, "X-CSRFToken": token, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_an_agent_changes_their_password_and_their_other_device_is_signed_out(contexts, console, chat):
    server, _site, world = chat
    email, password = world.agents["ada"]
    laptop = console("ada")
    phone = console("ada")
    new = "a much longer passphrase"

    laptop.page.get_by_role("link", name="Change password").click()
    page = laptop.page
    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill("too short")
    page.get_by_label("New password again").fill("too short")
    # The browser's own minlength check holds the form back first; the server says the same.
    page.get_by_label("New password", exact=True).evaluate("input => input.removeAttribute('minlength')")
    page.get_by_label("New password again").evaluate("input => input.removeAttribute('minlength')")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("12")

    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill(new)
    page.get_by_label("New password again").fill(new)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password has been changed")

    # The other device's console is sent to the sign-in page without anyone touching it.
    expect(phone.page).to_have_url(re.compile(r"/console/login"))
    page.get_by_role("link", name="Back to the console").click()
    expect(page.get_by_role("heading", name="My conversations")).to_be_visible()

    fresh = contexts().new_page()
    fresh.goto(server.url + "/console/login")
    fresh.get_by_label("Email").fill(email)
    fresh.get_by_label("Password").fill(password)
    fresh.get_by_role("button", name="Sign in").click()
    expect(fresh.get_by_role("alert")).to_have_text("Wrong email or password.")
    Console(contexts().new_page(), server).sign_in(email, new)


def test_a_disabled_agent_is_signed_out_and_leaves_the_team(contexts, console, chat):
    server, _site, world = chat
    with migrated_app(server.instance).app_context():
        add_agent(ROOT_EMAIL, "Root", "admin", ROOT_PASSWORD)
    email, password = world.agents["ada"]
    ada = console("ada")
    bo = console("bo")
    team = bo.page.locator("#list-agents li")
    expect(team.filter(has_text="Ada")).to_have_count(1)

    listed = admin_api(server, "GET", "/admin/api/agents")["agents"]
    ada_id = next(a["id"] for a in listed if a["email"] == email)
    admin_api(server, "PATCH", f"/admin/api/agents/{ada_id}", {"disabled": True})

    expect(ada.page).to_have_url(re.compile(r"/console/login"))
    expect(team.filter(has_text="Ada")).to_have_count(0)
    ada.page.get_by_label("Email").fill(email)
    ada.page.get_by_label("Password").fill(password)
    ada.page.get_by_role("button", name="Sign in").click()
    expect(ada.page.get_by_role("alert")).to_contain_text("This account is disabled")
