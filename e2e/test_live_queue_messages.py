"""Automated messages in the browser: a live visitor queued behind two others hears position 3, 2, 1
(in the workstream's own Finnish text, on a Finnish page) as the agent takes the ones ahead, while the
persistent widget on the same page never shows a queue message; a live widget closed for a holiday
says so."""

import json
import urllib.request
from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from app import workstreams
from e2e.conftest import Widget
from tests.support import migrated_app


def visitor_writes(server_url: str, origin: str, workstream_id: str, text: str) -> None:
    """Another visitor, in a browser of their own (plain HTTP, as the widget's fallback does)."""
    api = f"{server_url}/api/widget/workstreams/{workstream_id}"

    def post(path: str, body: dict, token: str | None = None) -> dict:
        headers = {"Origin": origin, "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(api + path, json.dumps(body).encode(), headers, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    token = post("/visitors", {})["token"]
    post("/messages", {"client_id": text, "body": text}, token)


def test_a_queued_visitor_hears_position_3_2_1_in_finnish_and_the_persistent_widget_never(contexts, console, chat):
    server, site, world = chat
    with migrated_app(server.instance).app_context():
        site.live_workstream_id = workstreams.create(
            {
                "name": "Pikachat",
                "mode": "live",
                "distribution": "pick",
                "allowed_origins": [site.origin],
                "automated_messages": {"position": {"texts": {"fi": "Jonossa olet {Position}. ({QueueName})"}}},
            }
        ).id
    for text in ("Ensimmäinen kysymys", "Toinen kysymys"):
        visitor_writes(server.url, site.origin, site.live_workstream_id, text)

    page = contexts().new_page()
    page.goto(site.url("alice", lang="fi"))
    persistent = Widget(page, world.workstream_id, lang="fi")
    live = Widget(page, site.live_workstream_id, lang="fi").open()
    live.write("Kolmas kysymys")
    told = live.messages(sender="system").locator(".pc-body")
    expect(told.filter(has_text="Jonossa olet 3. (Pikachat)")).to_have_count(1)

    agent = console("ada")
    queue = agent.page.locator("#list-queue li")
    for asked, now in (("Ensimmäinen kysymys", "Jonossa olet 2."), ("Toinen kysymys", "Jonossa olet 1.")):
        queue.filter(has_text=asked).get_by_role("button").first.click()
        agent.page.locator("#take").click()
        expect(agent.mine().filter(has_text=asked)).to_have_count(1)
        expect(told.filter(has_text=now)).to_have_count(1)
    expect(told.last).to_have_text("Olet seuraavana vuorossa.")
    assert told.all_inner_texts()[:1] == ["Jonossa olet 3. (Pikachat)"]

    # A persistent conversation waits in the same queue (Ada is full) and is told nothing.
    persistent.open().write("Tilaukseni on myöhässä")
    agent.page.wait_for_timeout(1500)  # a few scheduler ticks, each of which could tell queue news
    expect(queue.filter(has_text="Tilaukseni on myöhässä")).to_have_count(1)
    expect(persistent.messages(sender="system")).to_have_count(0)
    expect(persistent.messages()).to_have_count(1)
    expect(persistent.scope.get_by_role("button", name="Lopeta chat")).to_have_count(0)


def test_a_live_widget_closed_for_a_holiday_says_so(contexts, chat):
    server, site, world = chat
    today = datetime.now(UTC).date()
    with migrated_app(server.instance).app_context():
        site.live_workstream_id = workstreams.create(
            {
                "name": "Live help",
                "mode": "live",
                "allowed_origins": [site.origin],
                "hours": {
                    "timezone": "UTC",
                    "weekly": {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                    # Two days, so a run across midnight still falls on a holiday.
                    "holidays": [str(today), str(today + timedelta(days=1))],
                },
            }
        ).id
    page = contexts().new_page()
    page.goto(site.url("alice"))
    live = Widget(page, site.live_workstream_id).open()
    notice = live.scope.locator(".pc-notice")
    expect(notice).to_contain_text("The chat is closed today for a holiday. We are back")
    expect(live.box).to_be_disabled()
    page.evaluate("PersistentChat.setLocale('fi')")
    expect(notice).to_contain_text("Chat on tänään suljettu pyhäpäivän vuoksi. Palaamme")
