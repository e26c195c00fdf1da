"""Email for unread replies and for agents away from their consoles, sent through a real SMTP server
(aiosmtpd on a free port): when it goes, what it carries, when it does not go, and SMTP refusals."""

import re
import secrets
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis
from sqlalchemy import func, select

from app import (
    clock,
    conversations,
    customer_auth,
    events,
    mail,
    notifications,
    outbox,
    read_state,
    routing,
    signed_links,
    timers,
)
from app.errors import ChatError
from app.extensions import db
from app.models import Agent, Conversation, Customer, EmailOptOut, OutboxEmail, Workstream
from tests.smtp import SmtpServer, parts, tls_authority
from tests.support import TEST_REDIS_URL, Clock

RETURN_URL = "https://shop.example/account"


@pytest.fixture
def smtp():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def time_(ctx):
    return Clock()


@pytest.fixture
def setup(app, world, smtp, time_):
    """SMTP through the test server; the workstream emails after 10 minutes and links to the shop's page;
    Ada is available, so the customer's conversation is pushed to her."""
    app.config.update(SMTP_URL=smtp.url, SMTP_FROM="Shop support <support@shop.example>")
    workstream = db.session.get(Workstream, world.workstream_id)
    workstream.notify_return_url = RETURN_URL
    workstream.notify_email_after_minutes = 10
    db.session.commit()
    ada = agent("ada")
    routing.set_presence(ada, "available")
    # The agents' own emails are tested on their own, below; here they would only add to the count.
    ada.notify_email = agent("bo").notify_email = False
    db.session.commit()
    return workstream, ada


def agent(key: str) -> Agent:
    return db.session.scalar(select(Agent).where(Agent.email == f"{key}@example.com"))


def customer(world, sub: str = "alice", email: str | None = "alice@example.com") -> Customer:
    identity = customer_auth.Identity(world.auth_setting_id, sub, sub.title(), email=email)
    return conversations.customer_for(identity)


def conversation_with_reply(workstream, ada, someone, *replies: str, locale: str = "en") -> Conversation:
    # The timers take an agent without a console offline after a while: this one has just been seen.
    routing.seen(ada.id)
    routing.set_presence(ada, "available")
    message, _ = conversations.post_customer_message(workstream.id, someone.id, "c1", "Where's my order?", None, locale)
    for i, reply in enumerate(replies):
        conversations.post_agent_message(ada, message.conversation_id, f"a{i}", reply)
    return db.session.get(Conversation, message.conversation_id)


def tick(time_: Clock, **delta) -> dict:
    time_.advance(**delta)
    return timers.tick(clock.now())


def test_an_unread_reply_is_emailed_once_after_the_delay_with_every_unread_reply(setup, world, smtp, time_):
    workstream, ada = setup
    alice = customer(world)
    conversation = conversation_with_reply(workstream, ada, alice, "It left the warehouse today.", "Tracking: 123")

    assert tick(time_, minutes=9, seconds=59)["emailed"] == 0
    assert tick(time_, seconds=1)["emailed"] == 1
    [message] = smtp.wait_for(1)
    assert tick(time_, minutes=30)["emailed"] == 0
    assert len(smtp.messages()) == 1

    assert message["To"] == "alice@example.com"
    assert message["From"] == "Shop support <support@shop.example>"
    assert message["Subject"] == "2 new replies to your message"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["References"] == f"<conversation-{conversation.id}@shop.example>"
    text, html = parts(message)
    for body in (text, html):
        assert "It left the warehouse today." in body and "Tracking: 123" in body
        assert "Where's my order?" not in body
    link = re.search(r"Continue the conversation: (\S+)", text).group(1)
    assert link.startswith(RETURN_URL + "#persistent-chat=")
    assert f'href="{link}"' in html
    assert signed_links.open_return_link(alice.id, workstream.id, link.split("#persistent-chat=")[1]) == (
        conversation.id
    )
    db.session.refresh(conversation)
    assert notifications.view(conversation)["status"] == "sent"
    assert notifications.view(conversation)["sent_at"] == clock.iso(conversation.emailed_at)


def test_the_unsubscribe_headers_follow_rfc_8058_and_one_post_stops_the_emails(setup, world, smtp, time_, client):
    workstream, ada = setup
    alice = customer(world)
    conversation = conversation_with_reply(workstream, ada, alice, "First answer")
    tick(time_, minutes=10)
    [message] = smtp.wait_for(1)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(https?://\S+)>", message["List-Unsubscribe"]).group(1)
    path = urlsplit(url).path + "?" + urlsplit(url).query
    assert url in parts(message)[0]

    # Opening the link (a mail scanner does) shows a button and unsubscribes nobody.
    page = client.get(path)
    assert page.status_code == 200 and b"Stop emails" in page.data
    assert db.session.scalar(select(func.count()).select_from(EmailOptOut)) == 0

    done = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and b"no more emails" in done.data
    db.session.expire_all()
    assert notifications.view(db.session.get(Conversation, conversation.id))["notifications"] == "off"

    conversations.post_agent_message(ada, conversation.id, "a9", "Second answer")
    tick(time_, minutes=60)
    assert len(smtp.messages()) == 1
    assert client.post(path.replace("/unsubscribe/", "/unsubscribe/x")).status_code == 400
    assert client.post(urlsplit(url).path + "ä").status_code == 400


def test_reading_before_the_deadline_cancels_the_email(setup, world, smtp, time_):
    workstream, ada = setup
    alice = customer(world)
    conversation = conversation_with_reply(workstream, ada, alice, "Answer you will read")
    time_.advance(minutes=5)
    assert read_state.customer_read(alice.id, workstream.id, conversation.id, conversation.last_seq)
    tick(time_, minutes=20)
    # Bob's reply shows that the tick ran and sent what was due.
    bob = customer(world, "bob", "bob@example.com")
    conversation_with_reply(workstream, agent("ada"), bob, "Answer for Bob")
    tick(time_, minutes=10)
    [message] = smtp.wait_for(1)
    assert message["To"] == "bob@example.com"


def test_a_reply_after_an_email_waits_for_the_next_deadline(setup, world, smtp, time_):
    workstream, ada = setup
    alice = customer(world)
    conversation = conversation_with_reply(workstream, ada, alice, "First")
    tick(time_, minutes=10)
    smtp.wait_for(1)
    time_.advance(minutes=1)
    conversations.post_agent_message(ada, conversation.id, "a2", "Second")
    # Ten minutes after the second reply, and not before: at most one email per conversation per delay.
    assert tick(time_, minutes=9, seconds=59)["emailed"] == 0
    assert tick(time_, seconds=1)["emailed"] == 1
    first, second = smtp.wait_for(2)
    text = parts(second)[0]
    # Still unread on every device, so the first reply is repeated with the new one.
    assert "First" in text and "Second" in text
    assert second["References"] == first["References"]


def test_no_email_while_a_widget_of_the_customer_is_connected(setup, world, smtp, time_):
    workstream, ada = setup
    alice = customer(world)
    conversation_with_reply(workstream, ada, alice, "Seen on the site?")
    widget = events.hub.subscribe([events.customer_channel(alice.id, workstream.id)])
    try:
        assert tick(time_, minutes=15)["emailed"] == 0
    finally:
        widget.close()
    # Asked again a full delay after the widget was last found open.
    assert tick(time_, minutes=9)["emailed"] == 0
    assert tick(time_, minutes=1)["emailed"] == 1


def test_a_finnish_conversation_gets_the_finnish_email(setup, world, smtp, time_):
    workstream, ada = setup
    alice = customer(world)
    conversation_with_reply(workstream, ada, alice, "Paketti lähti tänään.", locale="fi-FI")
    tick(time_, minutes=10)
    [message] = smtp.wait_for(1)
    assert message["Subject"] == "Ada vastasi viestiisi"
    text, html = parts(message)
    assert "Jatka keskustelua:" in text and "Paketti lähti tänään." in text
    assert '<html lang="fi">' in html and "Lopeta nämä viestit" in html
    assert "lang=fi" in message["List-Unsubscribe"]


def test_html_in_a_reply_is_escaped_in_the_html_part(setup, world, smtp, time_):
    workstream, ada = setup
    conversation_with_reply(workstream, ada, customer(world), "<b>bold</b> & <script>x()</script>")
    tick(time_, minutes=10)
    text, html = parts(smtp.wait_for(1)[0])
    assert "<b>bold</b> & <script>x()</script>" in text
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in html and "<script>" not in html


def test_customers_without_an_address_or_with_the_setting_off_get_nothing(setup, world, smtp, time_):
    workstream, ada = setup
    conversation_with_reply(workstream, ada, customer(world, "nomail", None), "No address to send to")
    workstream.notify_email_after_minutes = None
    db.session.commit()
    conversation_with_reply(workstream, ada, customer(world, "bob", "bob@example.com"), "Setting is off")
    assert tick(time_, minutes=60)["emailed"] == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_an_smtp_server_answering_550_is_given_up_with_the_reason_shown(setup, world, smtp, time_):
    workstream, ada = setup
    smtp.answer = "550 5.1.1 Mailbox unavailable"
    conversation = conversation_with_reply(workstream, ada, customer(world), "Will bounce")
    assert tick(time_, minutes=10)["emailed"] == 0
    assert smtp.refused == 1
    db.session.expire_all()
    view = notifications.view(db.session.get(Conversation, conversation.id))
    assert view["status"] == "failed" and "550" in view["error"] and "Mailbox unavailable" in view["error"]
    # Given up: never tried again.
    tick(time_, hours=6)
    assert smtp.refused == 1
    assert db.session.scalar(select(OutboxEmail.status)) == "failed"


def test_an_smtp_server_answering_421_is_retried_with_backoff_until_it_accepts(setup, world, smtp, time_):
    workstream, ada = setup
    smtp.answer = "421 4.3.2 Try again later"
    conversation = conversation_with_reply(workstream, ada, customer(world), "Eventually delivered")
    tick(time_, minutes=10)
    assert smtp.refused == 1
    db.session.expire_all()
    view = notifications.view(db.session.get(Conversation, conversation.id))
    assert view["status"] == "retrying" and "421" in view["error"]
    tick(time_, seconds=59)
    assert smtp.refused == 1
    tick(time_, seconds=1)
    assert smtp.refused == 2
    smtp.answer = None
    assert tick(time_, minutes=4)["emailed"] == 0
    assert tick(time_, minutes=1)["emailed"] == 1
    smtp.wait_for(1)
    row = db.session.scalar(select(OutboxEmail))
    assert (row.status, row.attempts, row.last_error) == ("sent", 3, None)
    db.session.expire_all()
    assert notifications.view(db.session.get(Conversation, conversation.id))["status"] == "sent"


def test_an_unreachable_smtp_server_is_retried_and_the_scheduler_carries_on(setup, world, smtp, time_, app):
    workstream, ada = setup
    smtp.stop()
    conversation = conversation_with_reply(workstream, ada, customer(world), "Nobody listening")
    result = tick(time_, minutes=10)
    assert result["emailed"] == 0
    row = db.session.scalar(select(OutboxEmail))
    assert row.status == "pending" and "Could not reach the SMTP server" in row.last_error
    assert notifications.view(db.session.get(Conversation, conversation.id))["status"] == "retrying"


def test_the_log_backend_writes_the_email_to_the_server_log(setup, world, time_, app, capfd):
    workstream, ada = setup
    app.config["SMTP_URL"] = "log://"
    conversation_with_reply(workstream, ada, customer(world), "Shown in the log")
    assert tick(time_, minutes=10)["emailed"] == 1
    logged = capfd.readouterr().err
    assert "SMTP_URL=log://" in logged and "To: alice@example.com" in logged and "Shown in the log" in logged


def test_the_return_link_is_signed_expires_and_opens_only_the_customers_own_conversation(setup, world, time_):
    workstream, ada = setup
    alice = customer(world)
    conversation = conversation_with_reply(workstream, ada, alice, "Come back")
    value = signed_links.return_link(conversation).split("#persistent-chat=")[1]
    assert signed_links.open_return_link(alice.id, workstream.id, value) == conversation.id
    bob = customer(world, "bob")
    with pytest.raises(ChatError) as other:
        signed_links.open_return_link(bob.id, workstream.id, value)
    assert other.value.code == "not_found"
    tampered = value.replace(f".{conversation.id}.", f".{conversation.id + 1}.")
    for bad in (tampered, value + "x", value[:-1] + "ä", "", None, "a.b.c", "x" * 1000):
        with pytest.raises(ChatError) as refused:
            signed_links.open_return_link(alice.id, workstream.id, bad)
        assert refused.value.code == "invalid_link"
    time_.advance(days=signed_links.RETURN_LINK_DAYS, seconds=1)
    with pytest.raises(ChatError) as expired:
        signed_links.open_return_link(alice.id, workstream.id, value)
    assert (expired.value.status, expired.value.code) == (410, "link_expired")


# Agents ---------------------------------------------------------------------------------------------


def test_an_agent_without_an_open_console_is_emailed_when_a_parked_customer_returns(setup, world, smtp, time_):
    workstream, ada = setup
    alice = customer(world)
    ada.notify_email = True
    db.session.commit()
    conversation = conversation_with_reply(workstream, ada, alice, "Anything else?")
    tick(time_, seconds=1)
    [assigned] = smtp.wait_for(1)
    assert assigned["To"] == "ada@example.com"
    assert assigned["Subject"] == "New conversation for you: Alice (Support)"
    assert f"/console/#conversation-{conversation.id}" in parts(assigned)[0]

    conversations.park(ada, conversation.id)
    conversations.post_customer_message(workstream.id, alice.id, "c2", "One more question")
    tick(time_, seconds=1)
    _, returned = smtp.wait_for(2)
    assert returned["Subject"] == "Alice is back: Support"
    text, html = parts(returned)
    assert "One more question" in text and "One more question" in html


def test_an_agent_with_a_console_open_or_the_setting_off_gets_no_email(setup, world, smtp, time_, client):
    workstream, ada = setup
    ada.notify_email = True
    db.session.commit()
    console = events.hub.subscribe([events.agent_channel(ada.id)])
    try:
        conversation = conversation_with_reply(workstream, ada, customer(world), "Hello")
        conversations.park(ada, conversation.id)
        conversations.post_customer_message(workstream.id, conversation.customer_id, "c2", "Back")
    finally:
        console.close()
    ada.notify_email = False
    db.session.commit()
    conversations.park(ada, conversation.id)
    conversations.post_customer_message(workstream.id, conversation.customer_id, "c3", "Back again")
    tick(time_, seconds=1)
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_an_agent_turns_their_emails_off_in_the_console(app, world, client):
    email, password = world.agents["ada"]
    client.post("/console/login", data={"email": email, "password": password})
    assert client.get("/console/api/me").get_json()["agent"]["notify_email"] is True
    answer = client.post("/console/api/notifications", json={"email": False})
    assert answer.status_code == 200 and answer.get_json()["agent"]["notify_email"] is False
    refused = client.post("/console/api/notifications", json={"email": "no"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_request"
    with app.app_context():
        assert db.session.scalar(select(Agent.notify_email).where(Agent.email == email)) is False


def test_the_outbox_sends_each_email_once(setup, world, smtp, time_):
    workstream, ada = setup
    conversation_with_reply(workstream, ada, customer(world), "Exactly once")
    time_.advance(minutes=10)
    notifications.send_due(clock.now())
    assert outbox.deliver(clock.now()) == 1
    assert outbox.deliver(clock.now()) == 0
    assert outbox.deliver(clock.now() + timedelta(days=1)) == 0
    smtp.wait_for(1)
    assert len(smtp.messages()) == 1


@pytest.mark.parametrize("kind", ["in-process", "redis"])
def test_a_socket_of_any_process_counts_as_connected(kind):
    """The scheduler runs in one process; the customer's widget may be open on another one."""
    if kind == "redis" and not TEST_REDIS_URL:
        pytest.skip("needs Redis: set TEST_REDIS_URL (make test does when Redis answers on 127.0.0.1:6379)")
    prefix = f"test-{secrets.token_hex(4)}:"
    scheduler, server = (
        (events.RedisHub(TEST_REDIS_URL, prefix), events.RedisHub(TEST_REDIS_URL, prefix))
        if kind == "redis"
        else (events.InProcessHub(),) * 2
    )
    try:
        assert not scheduler.listening("customer:1:w")
        widget = server.subscribe(["customer:1:w"])
        assert scheduler.listening("customer:1:w") and not scheduler.listening("customer:2:w")
        widget.close()
        # Redis drops the subscription a moment after the socket goes (UNSUBSCRIBE is not waited for).
        deadline = time.monotonic() + 5
        while scheduler.listening("customer:1:w"):
            assert time.monotonic() < deadline, "still listed as connected"
            time.sleep(0.01)
    finally:
        for hub in {scheduler, server}:
            if isinstance(hub, events.RedisHub):
                hub.close()


# SMTP over TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def authority(tmp_path, monkeypatch):
    """A test CA the server's TLS client trusts (OpenSSL reads SSL_CERT_FILE when a context is made)."""
    ca_file, context = tls_authority(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    return context


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_smtp_with_starttls_or_implicit_tls_and_a_password_delivers(setup, world, time_, app, authority, tls):
    workstream, ada = setup
    server = SmtpServer(tls, authority).start()
    try:
        app.config["SMTP_URL"] = server.url
        conversation_with_reply(workstream, ada, customer(world), "Sent over TLS")
        assert tick(time_, minutes=10)["emailed"] == 1
        [message] = server.wait_for(1)
        assert "Sent over TLS" in parts(message)[0] and server.logins == ["chat"]
    finally:
        server.stop()


def test_a_password_is_never_sent_to_a_server_without_starttls(setup, world, smtp, time_, app):
    workstream, ada = setup
    app.config["SMTP_URL"] = smtp.url.replace("smtp://", "smtp://chat:secret@")
    conversation = conversation_with_reply(workstream, ada, customer(world), "Not in clear")
    assert tick(time_, minutes=10)["emailed"] == 0
    assert smtp.messages() == []
    db.session.expire_all()
    view = notifications.view(db.session.get(Conversation, conversation.id))
    assert view["status"] == "failed" and "STARTTLS" in view["error"]


def test_a_wrong_smtp_url_is_refused_at_start_up():
    for url in ("http://mail.example", "smtp://", "mailto:x@example.com"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            mail.check_url(url)
    assert mail.check_url("log://") == "log://" and mail.check_url("") is None


def test_a_reply_unread_when_the_agent_ends_the_conversation_is_still_emailed(setup, world, smtp, time_):
    workstream, ada = setup
    conversation = conversation_with_reply(workstream, ada, customer(world), "Solved: your refund is on its way.")
    conversations.end(ada, conversation.id)
    tick(time_, minutes=10)
    assert "Solved: your refund is on its way." in parts(smtp.wait_for(1)[0])[0]


def test_when_redis_cannot_say_who_is_connected_customers_wait_and_agents_are_emailed(
    setup, world, smtp, time_, monkeypatch
):
    workstream, ada = setup
    ada.notify_email = True
    db.session.commit()

    def unreachable(channel: str) -> bool:
        raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(events.hub, "listening", unreachable)
    conversation = conversation_with_reply(workstream, ada, customer(world), "Redis or not")
    assert tick(time_, minutes=10)["emailed"] == 1
    [assigned] = smtp.wait_for(1)
    assert assigned["To"] == "ada@example.com"
    assert db.session.get(Conversation, conversation.id).notify_due_at == clock.now() + timedelta(minutes=10)


def test_sent_and_given_up_emails_are_deleted_after_30_days_and_pending_ones_kept(setup, world, smtp, time_):
    workstream, ada = setup
    conversation_with_reply(workstream, ada, customer(world), "Kept for a while")
    tick(time_, minutes=10)
    smtp.wait_for(1)
    outbox.add("customer_reply", "later@example.com", {"subject": "s", "text": "t"})
    db.session.commit()
    smtp.answer = "421 busy"
    tick(time_, days=29)
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 2
    tick(time_, days=2)
    assert db.session.scalars(select(OutboxEmail.recipient)).all() == ["later@example.com"]


def test_no_database_transaction_waits_on_a_slow_smtp_server(setup, world, smtp, time_, app):
    """On SQLite an open transaction holds the write lock: every writer of the process would wait."""
    workstream, ada = setup
    conversation = conversation_with_reply(workstream, ada, customer(world), "Slowly delivered")
    smtp.stall.set()
    time_.advance(minutes=10)
    db.session.commit()  # this test's own session lets go of SQLite's write lock too

    def scheduler() -> None:
        with app.app_context():
            timers.tick(clock.now())

    thread = threading.Thread(target=scheduler)
    thread.start()
    try:
        assert smtp.stalling.wait(10), "the email never reached the SMTP server"
        started = time.monotonic()
        conversations.post_agent_message(ada, conversation.id, "a-meanwhile", "Written while the email is sent")
        assert time.monotonic() - started < 2
    finally:
        smtp.release.set()
        thread.join(30)
    smtp.wait_for(1)
