"""Bringing the customer back: the agent replies while the customer's widget is closed, the server's
clock passes the deadline, and the email (in Finnish, for a Finnish conversation) arrives at a real SMTP
server; its link, opened on another device where the site signs the same customer in, opens the widget
on that conversation. A reply read before the deadline sends nothing; the agent sees "Seen", "Emailed"
and, after the one-click unsubscribe, "email notifications off"."""

import re
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from app.extensions import db
from app.models import Workstream
from e2e.conftest import Widget
from tests.smtp import SmtpServer, parts
from tests.support import app_for

DEADLINE_PASSED = 11 * 60


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def chat_env(smtp):
    return {"SMTP_URL": smtp.url, "SMTP_FROM": "Kauppa <tuki@shop.example>"}


@pytest.fixture
def mailing(chat):
    """The shop's page in Finnish is where emails link back to; its customers have email addresses."""
    server, site, world = chat
    app = app_for(server.instance)
    with app.app_context():
        db.session.execute(
            update(Workstream)
            .where(Workstream.id == world.workstream_id)
            .values(notify_return_url=f"{site.origin}/?lang=fi", notify_email_after_minutes=10)
        )
        db.session.commit()
        db.engine.dispose()
    site.claims = {"alice": {"email": "alice@example.com"}, "bob": {"email": "bob@example.com"}}
    return server, site


def finnish_widget(contexts, site, sub: str) -> Widget:
    page = contexts().new_page()
    page.goto(site.url(sub, lang="fi"))
    return Widget(page, lang="fi").open()


def test_an_unread_reply_is_emailed_and_its_link_opens_the_conversation(mailing, contexts, console, smtp):
    server, site = mailing
    agent = console("ada")
    alice = finnish_widget(contexts, site, "alice")
    alice.write("Missä tilaukseni on?")
    agent.open("Missä tilaukseni on?")
    alice.page.close()

    agent.reply("Paketti lähti tänään.")
    server.move_clock(DEADLINE_PASSED)
    [email] = smtp.wait_for(1)
    assert email["To"] == "alice@example.com" and email["Subject"] == "Ada vastasi viestiisi"
    text, html = parts(email)
    assert "Paketti lähti tänään." in text and "Paketti lähti tänään." in html
    assert "Missä tilaukseni on?" not in text
    link = re.search(r"Jatka keskustelua: (\S+)", text).group(1)
    assert link.startswith(f"{site.origin}/?lang=fi#persistent-chat=")
    expect(agent.page.locator("#conv-email")).to_have_text(re.compile(r"^Emailed \d"))

    # Another device: the site signs Alice in, and the link opens the chat on the conversation.
    page = contexts().new_page()
    page.goto(link)
    device = Widget(page, lang="fi")
    expect(device.scope.get_by_role("dialog", name="Chat")).to_be_visible()
    expect(device.messages(sender="agent").locator(".pc-body")).to_have_text(["Paketti lähti tänään."])
    assert "persistent-chat" not in page.url
    seen = agent.log().locator('.msg[data-sender="agent"] .msg-seen')
    expect(seen).to_have_count(1)
    expect(seen).to_have_text(re.compile(r"^Seen \d"))

    # Read on that device before its deadline: the second reply is never emailed.
    agent.reply("Seurantanumero on 123.")
    expect(device.messages(sender="agent")).to_have_count(2)
    expect(agent.log().locator('.msg[data-sender="agent"]').last.locator(".msg-seen")).to_be_visible()
    expect(seen).to_have_count(1)
    page.close()

    # Bob's unread reply goes out in the same tick that would have sent Alice's.
    bob = finnish_widget(contexts, site, "bob")
    bob.write("Onko tämä auki?")
    agent.open("Onko tämä auki?")
    bob.page.close()
    agent.reply("On, tervetuloa.")
    server.move_clock(DEADLINE_PASSED)
    emails = smtp.wait_for(2)
    assert [e["To"] for e in emails] == ["alice@example.com", "bob@example.com"]
    assert len(smtp.messages()) == 2


def test_one_click_unsubscribe_shows_email_notifications_off_to_the_agent(mailing, contexts, console, smtp):
    server, site = mailing
    agent = console("ada")
    alice = finnish_widget(contexts, site, "alice")
    alice.write("Hei")
    agent.open("Hei")
    alice.page.close()
    agent.reply("Hei, miten voin auttaa?")
    server.move_clock(DEADLINE_PASSED)
    [email] = smtp.wait_for(1)
    expect(agent.page.locator("#conv-email")).to_have_text(re.compile(r"^Emailed \d"))

    # What a mail client's unsubscribe button sends (RFC 8058).
    url = re.fullmatch(r"<(\S+)>", email["List-Unsubscribe"]).group(1)
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode({"List-Unsubscribe": "One-Click"}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    expect(agent.page.locator("#conv-email")).to_have_text(re.compile(r"^Emailed \d.* · email notifications off$"))


def test_a_device_that_was_offline_while_the_customer_read_elsewhere_shows_no_unread(chat, contexts, console):
    _server, site, _world = chat
    agent = console("ada")
    phone_page, laptop_page = contexts().new_page(), contexts().new_page()
    phone_page.goto(site.url("alice"))
    # The laptop's page has its token written in (no fetch to fail while it is offline).
    laptop_page.goto(site.url("alice", style="inline"))
    phone, laptop = Widget(phone_page).open(), Widget(laptop_page)
    phone.write("Reading on my phone")
    agent.open("Reading on my phone")
    # The panel is closed: its messages are in the page, though not shown.
    held = laptop.scope.locator(".pc-log .pc-msg")
    expect(held.and_(laptop.scope.locator('[data-sender="customer"]'))).to_have_count(1)

    laptop_page.context.set_offline(True)
    agent.reply("Read this on the phone")
    expect(phone.messages(sender="agent")).to_have_count(1)
    expect(agent.log().locator('.msg[data-sender="agent"] .msg-seen')).to_have_text(re.compile(r"^Seen \d"))

    # Back online, the laptop catches up from its cursor: the reply arrives, already read elsewhere.
    laptop_page.context.set_offline(False)
    expect(held.and_(laptop.scope.locator('[data-sender="agent"]'))).to_have_count(1, timeout=10000)
    expect(laptop.launcher.locator(".pc-unread")).to_be_hidden()

    # Nobody reads the next one: both devices count it.
    phone.page.get_by_role("button", name="Minimize chat").click()
    agent.reply("And this one nobody has read")
    for device in (phone, laptop):
        expect(device.launcher.locator(".pc-unread")).to_have_text("1")


def test_an_agent_turns_their_own_emails_off_and_it_sticks(console):
    agent = console("ada")
    setting = agent.page.get_by_role("checkbox", name="Email me when away")
    # Enabled once the agent's setting has loaded.
    expect(setting).to_be_enabled()
    expect(setting).to_be_checked()
    setting.uncheck()
    expect(setting).to_be_enabled()
    agent.page.reload()
    expect(setting).to_be_enabled()
    expect(setting).not_to_be_checked()


def test_the_agent_sees_why_an_email_was_not_delivered(mailing, contexts, console, smtp):
    server, site = mailing
    smtp.answer = "550 5.1.1 Mailbox unavailable"
    agent = console("ada")
    alice = finnish_widget(contexts, site, "alice")
    alice.write("Hei taas")
    agent.open("Hei taas")
    alice.page.close()
    agent.reply("Vastaus, joka ei mene perille")
    server.move_clock(DEADLINE_PASSED)
    expect(agent.page.locator("#conv-email")).to_have_text(
        "Email not delivered: SMTP 550: 5.1.1 Mailbox unavailable", timeout=15000
    )
    assert smtp.messages() == [] and smtp.refused == 1


def test_a_link_to_an_older_conversation_pages_it_in_and_shows_the_reply(mailing, contexts, console, smtp):
    server, site = mailing
    agent = console("ada")
    alice = finnish_widget(contexts, site, "alice")
    alice.write("Vanha kysymys")
    agent.open("Vanha kysymys")
    alice.page.close()
    agent.reply("Vanha vastaus")
    server.move_clock(DEADLINE_PASSED)
    link = re.search(r"Jatka keskustelua: (\S+)", parts(smtp.wait_for(1)[0])[0]).group(1)
    agent.page.get_by_role("button", name="End conversation").click()
    agent.page.get_by_role("dialog").get_by_role("button", name="End", exact=True).click()
    later = finnish_widget(contexts, site, "alice")
    later.write("Uusi kysymys")
    later.page.close()

    page = contexts().new_page()
    page.goto(link)
    device = Widget(page, lang="fi")
    expect(device.scope.get_by_role("dialog", name="Chat")).to_be_visible()
    reply = device.messages(sender="agent").filter(has_text="Vanha vastaus")
    expect(reply).to_be_visible()
    expect(device.messages(sender="customer").filter(has_text="Uusi kysymys")).to_have_count(1)
