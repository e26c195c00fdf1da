"""The agent's workspace in Chromium: internal notes, canned responses, and the reply box that waits for
the conversation.

One server for the module; each test uses its own customers so that they do not see each other's work.
"""

import re
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select, update

from app import canned, labels, routing
from app.extensions import db
from app.models import Agent, Message
from e2e import test_widget_accessibility as accessibility
from e2e.conftest import Console, HostSite, Widget
from tests.support import ChatServer, free_port, migrated_app, seed
from tests.test_sockets import Peer

axe_script = accessibility.axe_script  # the session fixture, shared
serious_violations = accessibility.serious_violations


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    instance = tmp_path_factory.mktemp("workspace")
    host_port = free_port()
    app = migrated_app(instance)
    world = seed(app, [f"http://127.0.0.1:{host_port}"], {"ada": "Ada", "bo": "Bo"})
    with app.app_context():
        # The tests leave their conversations open; every next one must still fit.
        db.session.execute(update(Agent).values(capacity=10_000))
        db.session.commit()
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


def only_ada_available(server, world) -> None:
    """Bo, signed in by an earlier test, goes offline so that the next conversation is pushed to Ada."""
    with migrated_app(server.instance).app_context():
        bo = db.session.scalar(select(Agent).where(Agent.email == world.agents["bo"][0]))
        routing.set_presence(bo, "offline")


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
    only_ada_available(server, world)
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


def test_canned_responses_are_picked_with_slash_and_filled_for_the_customer(contexts, chat):
    server, site, world = chat
    with migrated_app(server.instance).app_context():
        ada_row = db.session.scalar(select(Agent).where(Agent.email == world.agents["ada"][0]))
        canned.create(None, {"shortcut": "greet", "body": "Hello {CustomerName}, {AgentName} here."})
        canned.create(None, {"shortcut": "greet", "locale": "fi", "body": "Hei {CustomerName}, täällä {AgentName}."})
        canned.create(None, {"shortcut": "order", "body": "Your order {order} is on its way."})
        canned.create(ada_row, {"shortcut": "thanks", "body": "Thanks for waiting, {CustomerName}!"})
    only_ada_available(server, world)
    site.context["pia"] = {"order": "A-123"}
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("pia"))
    customer = Widget(page).open()
    customer.write("Where is my parcel?")
    ada.open("Where is my parcel?")

    reply = ada.page.get_by_label("Reply")
    menu = ada.page.get_by_role("listbox", name="Canned responses")
    reply.press_sequentially("/")
    expect(menu.get_by_role("option")).to_have_text(
        ["/greet Hello pia, Ada here.", "/order Your order A-123 is on its way.", "/thanks Thanks for waiting, pia!"]
    )
    reply.press_sequentially("gr")
    expect(menu.get_by_role("option")).to_have_text(["/greet Hello pia, Ada here."])
    expect(menu.get_by_role("option").first).to_have_attribute("aria-selected", "true")
    reply.press("Enter")  # picks; it does not send
    expect(menu).to_be_hidden()
    expect(reply).to_have_value("Hello pia, Ada here.")
    reply.press("Enter")
    expect(customer.messages(sender="agent")).to_contain_text("Hello pia, Ada here.")

    reply.press_sequentially("/")
    reply.press("ArrowDown")
    expect(menu.get_by_role("option").nth(1)).to_have_attribute("aria-selected", "true")
    reply.press("Tab")
    expect(reply).to_have_value("Your order A-123 is on its way.")
    reply.fill("")
    reply.press_sequentially("/nothing")
    expect(menu).to_contain_text("No canned response starts with that.")
    reply.press("Escape")
    expect(menu).to_be_hidden()
    expect(reply).to_have_value("/nothing")
    reply.fill("")
    reply.press_sequentially("/th")
    menu.get_by_role("option").first.click()
    expect(reply).to_have_value("Thanks for waiting, pia!")
    expect(reply).to_be_focused()

    # A Finnish-speaking customer gets the Finnish version of the same shortcut.
    finnish = contexts().new_page()
    finnish.goto(site.url("pekka", lang="fi"))
    Widget(finnish, lang="fi").open().write("Missä pakettini on?")
    ada.open("Missä pakettini on?")
    reply.press_sequentially("/greet")
    expect(menu.get_by_role("option")).to_have_text(["/greet Hei pekka, täällä Ada."])
    reply.press("Enter")
    expect(reply).to_have_value("Hei pekka, täällä Ada.")


def test_an_agent_searches_every_conversation_and_opens_a_result(contexts, chat):
    server, site, world = chat
    only_ada_available(server, world)
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    first = contexts().new_page()
    first.goto(site.url("quinn"))
    Widget(first).open().write("My bicycle arrived scratched")
    ada.open("bicycle arrived scratched")
    ada.reply("Sorry! A new frame is on its way.")
    ada.page.get_by_role("button", name="End conversation").click()
    ada.page.get_by_role("dialog").get_by_role("button", name="End").click()
    expect(ada.page.locator("#conv-status")).to_have_attribute("data-status", "wrap_up")
    second = contexts().new_page()
    second.goto(site.url("rosa"))
    Widget(second).open().write("Is a bell included with the bicycle?")
    expect(ada.mine().filter(has_text="bell included")).to_have_count(1)

    search = ada.page.get_by_role("search", name="Search conversations")
    search.get_by_label("Search").fill("bicyc")  # words are prefixes
    search.get_by_role("button", name="Search").click()
    results = ada.page.locator("#search-results li")
    expect(ada.page.get_by_role("status").filter(has_text="found")).to_have_text("2 conversations found")
    expect(results.first).to_contain_text("rosa")
    expect(results.first.locator("mark")).to_have_text("bicycle")
    expect(results.nth(1).locator("mark")).to_have_text("bicycle")
    expect(results.nth(1)).to_contain_text("Wrap-up")

    search.get_by_text("Filters").click()
    search.get_by_label("Status").select_option("wrap_up")
    search.get_by_role("button", name="Search").click()
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("quinn")
    results.first.get_by_role("button").click()
    expect(ada.page.get_by_role("heading", name="quinn")).to_be_visible()
    expect(ada.log().locator(".msg").filter(has_text="A new frame is on its way")).to_be_visible()

    search.get_by_label("Search").fill("unicycle")
    search.get_by_role("button", name="Search").click()
    expect(ada.page.get_by_role("status").filter(has_text="Nothing")).to_have_text("Nothing found.")
    ada.page.get_by_role("button", name="Clear search").click()
    expect(ada.page.get_by_role("heading", name="Search results")).to_be_hidden()


def test_an_agent_labels_a_conversation_and_finds_it_by_its_label(contexts, chat):
    server, site, world = chat
    only_ada_available(server, world)
    with migrated_app(server.instance).app_context():
        labels.create(None, {"name": "Damaged", "colour": "#b00020"})
        labels.create(None, {"name": "Returns", "colour": "#ffd54f"})
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("sami"))
    Widget(page).open().write("The lamp came in pieces")
    ada.open("lamp came in pieces")

    ada.page.locator("#label-picker summary").click()
    ada.page.get_by_role("group", name="Labels on this conversation").get_by_label("Damaged").check()
    chips = ada.page.get_by_role("list", name="Labels")
    expect(chips.get_by_role("listitem")).to_have_text(["Damaged"])
    item = ada.mine().filter(has_text="lamp came in pieces")
    expect(item.locator(".label-chip")).to_have_text(["Damaged"])
    ada.page.get_by_label("Returns").check()
    expect(chips.get_by_role("listitem")).to_have_text(["Damaged", "Returns"])
    # Each label keeps its colour and readable text on it.
    assert "label-on-dark" in chips.get_by_text("Damaged").get_attribute("class")
    assert "label-on-light" in chips.get_by_text("Returns").get_attribute("class")

    ada.page.reload()
    expect(ada.page.get_by_role("list", name="Labels").get_by_role("listitem")).to_have_text(["Damaged", "Returns"])
    ada.page.locator("#label-picker summary").click()
    ada.page.get_by_label("Returns").uncheck()
    expect(ada.page.get_by_role("list", name="Labels").get_by_role("listitem")).to_have_text(["Damaged"])

    search = ada.page.get_by_role("search", name="Search conversations")
    search.get_by_text("Filters").click()
    search.get_by_label("Label").select_option(label="Damaged")
    search.get_by_role("button", name="Search").click()
    results = ada.page.locator("#search-results li")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("sami")
    expect(results.first.locator(".label-chip")).to_have_text(["Damaged"])


def test_messages_from_one_sender_within_minutes_are_grouped_in_the_console(contexts, chat):
    server, site, world = chat
    only_ada_available(server, world)
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("tove"))
    customer = Widget(page).open()
    for text in ("Hello there", "I have a question", "about my invoice"):
        customer.write(text)
    ada.open("about my invoice")
    ada.reply("Sure, ask away.")
    ada.reply("I am here.")
    messages = ada.log().locator(".msg")
    expect(messages).to_have_count(5)
    continued = [("msg-continued" in (c or "")) for c in messages.evaluate_all("ns => ns.map(n => n.className)")]
    assert continued == [False, True, True, False, True]
    # One visible name and time per group; the rest are there for screen readers only.
    visible_meta = ada.log().locator(".msg:not(.msg-continued) .msg-meta")
    expect(visible_meta).to_have_count(2)
    expect(visible_meta.first.locator("time")).to_have_text(re.compile(r"^[1-9]\d?[:.]\d\d"))


def grouping(widget: Widget) -> list[tuple[str, bool, bool]]:
    """Each message of the widget's log: its text, whether its name and its time are shown."""
    return widget.messages().evaluate_all(
        """ns => ns.map(n => [n.querySelector('.pc-body').textContent,
                              !n.classList.contains('pc-joined'), !n.classList.contains('pc-followed')])"""
    )


def test_messages_from_one_sender_within_minutes_are_grouped_in_the_widget_with_short_times(contexts, chat):
    server, site, world = chat
    only_ada_available(server, world)
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("yrjo"))
    customer = Widget(page).open()
    for text in ("Good morning", "My order is late", "It was due Monday"):
        customer.write(text)
    ada.open("It was due Monday")
    ada.reply("Sorry to hear that.")
    ada.reply("Let me check.")
    expect(customer.messages()).to_have_count(5)
    assert [tuple(g) for g in grouping(customer)] == [
        ("Good morning", True, False),
        ("My order is late", False, False),
        ("It was due Monday", False, True),
        ("Sorry to hear that.", True, False),
        ("Let me check.", False, True),
    ]
    # The hidden names and times stay for screen readers: clipped to a pixel, not removed.
    hidden = customer.log.locator(".pc-followed .pc-time").first
    assert hidden.bounding_box()["width"] <= 1 and hidden.inner_text() != ""
    shown = customer.log.locator(".pc-msg:not(.pc-followed) .pc-time")
    expect(shown).to_have_count(2)
    expect(shown.first).to_have_text(re.compile(r"^[1-9]\d?:\d\d( [AP]M)?$"))  # 9:05 AM, never 09:05
    assert shown.first.bounding_box()["width"] > 1

    # Ten minutes between two messages of the customer's start a new group.
    conversation_id = int(customer.messages().first.get_attribute("data-conversation"))
    with migrated_app(server.instance).app_context():
        first = db.session.scalar(select(Message).where(Message.conversation_id == conversation_id, Message.seq == 1))
        first.created_at -= timedelta(minutes=10)
        db.session.commit()
    page.reload()
    customer = Widget(page).open()
    expect(customer.messages()).to_have_count(5)
    assert [tuple(g) for g in grouping(customer)][:3] == [
        ("Good morning", True, True),
        ("My order is late", True, False),
        ("It was due Monday", False, True),
    ]

    # Finnish times say "klo", without a leading zero either.
    finnish = contexts().new_page()
    finnish.goto(site.url("ylva", lang="fi"))
    suomeksi = Widget(finnish, lang="fi").open()
    suomeksi.write("Hei, kysymys laskusta")
    expect(suomeksi.log.locator(".pc-time").first).to_have_text(re.compile(r"^klo [1-9]?\d\.\d\d$"))
    expect(suomeksi.log.locator(".pc-time").first).not_to_have_text(re.compile(r"klo 0\d"))


def test_a_supervisor_watches_the_whole_team_live_and_sends_a_conversation_back_to_the_queue(contexts, chat):
    server, site, world = chat
    only_ada_available(server, world)
    with migrated_app(server.instance).app_context():
        db.session.execute(update(Agent).where(Agent.email == world.agents["bo"][0]).values(role="supervisor"))
        db.session.commit()
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    expect(ada.page.get_by_role("heading", name="All conversations")).to_be_hidden()
    bo = Console(contexts().new_page(), server).sign_in(*world.agents["bo"])
    with migrated_app(server.instance).app_context():
        # In, but not taking new work: what goes back to the queue stays there.
        routing.set_presence(db.session.scalar(select(Agent).where(Agent.role == "supervisor")), "busy")
    everyone = bo.page.locator("#team-section")
    expect(everyone.get_by_role("heading", name="All conversations")).to_be_visible()

    page = contexts().new_page()
    page.goto(site.url("ulla"))
    customer = Widget(page).open()
    customer.write("Can I change my delivery address?")
    ada_group = everyone.get_by_role("list", name=re.compile(r"^Ada \(\d+\)$"))
    item = ada_group.get_by_role("listitem").filter(has_text="ulla")
    expect(item).to_contain_text("Support")  # arrives live, under the agent it was given to

    item.get_by_role("button").click()
    expect(bo.page.get_by_role("heading", name="ulla")).to_be_visible()
    expect(bo.log().locator(".msg").filter(has_text="delivery address")).to_be_visible()
    customer.write("It is for order 42")
    expect(bo.log().locator(".msg").filter(has_text="order 42")).to_be_visible()  # watched live

    bo.page.get_by_label("Reassign to").select_option(label="Queue")
    bo.page.get_by_role("button", name="Reassign").click()
    queue_group = everyone.get_by_role("list", name=re.compile(r"^Queue \(\d+\)$"))
    expect(queue_group.get_by_role("listitem").filter(has_text="ulla")).to_contain_text("waiting 0 min")
    expect(ada_group.get_by_role("listitem").filter(has_text="ulla")).to_have_count(0)
    expect(ada.mine().filter(has_text="order 42")).to_have_count(0)

    # Routing runs again when the next customer writes, oldest in the queue first: the newcomer goes to
    # Ada, and the conversation sent away from her stays in the queue for someone else.
    newcomer = contexts().new_page()
    newcomer.goto(site.url("vilja"))
    Widget(newcomer).open().write("Do you ship to Åland?")
    expect(ada_group.get_by_role("listitem").filter(has_text="vilja")).to_be_visible()
    expect(queue_group.get_by_role("listitem").filter(has_text="ulla")).to_be_visible()
    expect(ada_group.get_by_role("listitem").filter(has_text="ulla")).to_have_count(0)


def test_the_customer_rates_the_conversation_the_agent_ended_and_the_agent_sees_it(contexts, chat):
    server, site, world = chat
    only_ada_available(server, world)
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("vera", lang="fi"))
    customer = Widget(page, lang="fi").open()
    customer.write("Tilaukseni on myöhässä")
    ada.open("Tilaukseni on myöhässä")
    ada.reply("Se lähti tänään.")
    ada.page.get_by_role("button", name="End conversation").click()
    ada.page.get_by_role("dialog").get_by_role("button", name="End").click()

    expect(customer.log.locator(".pc-divider")).to_have_text("Keskustelu päättyi")
    question = customer.scope.get_by_role("group", name="Miten onnistuimme?")
    expect(question).to_be_visible()
    customer.scope.get_by_role("button", name="Lähetä arvio").click()
    expect(customer.scope.get_by_role("alert").filter(has_text="Valitse")).to_have_text("Valitse ensin arvio 1–5.")
    question.get_by_label("4/5").check()
    customer.scope.get_by_label("Haluatko kertoa lisää? (valinnainen)").fill("Nopea vastaus")
    customer.scope.get_by_role("button", name="Lähetä arvio").click()
    expect(customer.scope.get_by_role("status").filter(has_text="Kiitos")).to_have_text("Kiitos arviostasi!")
    expect(question).to_have_count(0)

    expect(ada.page.locator("#conv-rating")).to_have_text("Customer rating: 4 of 5 · “Nopea vastaus”")
    # Asked once: after a reload there is no question, and writing again starts a new conversation.
    page.reload()
    customer = Widget(page, lang="fi").open()
    expect(customer.log.locator(".pc-divider")).to_have_count(1)
    expect(customer.scope.get_by_role("group", name="Miten onnistuimme?")).to_have_count(0)
    customer.write("Vielä yksi kysymys")


def test_axe_finds_nothing_serious_in_the_new_views(contexts, chat, axe_script):
    server, site, world = chat
    only_ada_available(server, world)
    with migrated_app(server.instance).app_context():
        db.session.execute(update(Agent).where(Agent.email == world.agents["ada"][0]).values(role="admin"))
        db.session.commit()
        labels.create(None, {"name": "Axe", "colour": "#1f5f99"})
        canned.create(None, {"shortcut": "axe", "body": "Checked by axe, {CustomerName}."})
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("walt"))
    customer = Widget(page).open()
    customer.write("Accessibility check, please")
    ada.open("Accessibility check")
    expect(ada.page.get_by_role("heading", name="All conversations")).to_be_visible()
    ada.page.get_by_label("Internal note").fill("Checked with axe")
    ada.page.get_by_role("button", name="Add note").click()
    expect(ada.log().locator(".note")).to_have_count(1)
    ada.page.locator("#label-picker summary").click()
    ada.page.get_by_label("Axe").check()
    search = ada.page.get_by_role("search", name="Search conversations")
    search.get_by_label("Search").fill("accessibility")
    search.get_by_text("Filters").click()
    search.get_by_role("button", name="Search").click()
    expect(ada.page.locator("#search-results li")).to_have_count(1)
    ada.page.get_by_label("Reply").press_sequentially("/ax")
    expect(ada.page.get_by_role("listbox", name="Canned responses")).to_be_visible()
    assert serious_violations(ada.page, axe_script) == []

    ada.page.get_by_label("Reply").fill("")
    ada.reply("Done.")
    ada.page.get_by_role("button", name="End conversation").click()
    ada.page.get_by_role("dialog").get_by_role("button", name="End").click()
    expect(customer.scope.get_by_role("group", name="How did we do?")).to_be_visible()
    assert serious_violations(page, axe_script) == []


def test_a_supervisor_shows_a_report_and_downloads_it_as_csv(contexts, chat):
    server, site, world = chat
    with migrated_app(server.instance).app_context():
        db.session.execute(update(Agent).where(Agent.email == world.agents["bo"][0]).values(role="supervisor"))
        # An earlier test of the module made Ada an admin: here she is a plain agent again.
        db.session.execute(update(Agent).where(Agent.email == world.agents["ada"][0]).values(role="agent"))
        db.session.commit()
    only_ada_available(server, world)
    ada = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    expect(ada.page.get_by_role("heading", name="Reports")).to_be_hidden()
    page = contexts().new_page()
    page.goto(site.url("xena"))
    Widget(page).open().write("Counting for the report")
    ada.open("Counting for the report")
    ada.page.get_by_role("button", name="Move to waiting").click()
    expect(ada.page.locator("#conv-status")).to_have_attribute("data-status", "waiting")
    bo = Console(contexts().new_page(), server).sign_in(*world.agents["bo"])
    reports_section = bo.page.locator("#reports-section")
    reports_section.get_by_role("button", name="Show report").click()
    table = reports_section.get_by_role("table", name="Report")
    # Today's conversations of the one workstream: a header row and one row.
    expect(table.get_by_role("row")).to_have_count(2)
    expect(table.get_by_role("columnheader")).to_have_text(
        ["Day", "Name", "Conversations", "Ended", "Queue wait", "First response", "Resolution", "Parked", "CSAT"]
    )
    row = table.get_by_role("row").nth(1)
    expect(row).to_contain_text("Support")
    # Every conversation of the module went straight to an agent; only this one was parked (and still is).
    expect(row.get_by_role("cell").nth(4)).to_have_text(re.compile(r"^\d+ s$"))
    expect(row.get_by_role("cell").nth(7)).to_have_text(re.compile(r"^\d+ (s|min) \(1\)$"))
    with bo.page.expect_download() as download:
        reports_section.get_by_role("link", name="Download CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("day,key,name,conversations,") and ",Support," in text
    assert "queue_wait_seconds,parked,parked_seconds" in text.splitlines()[0]
