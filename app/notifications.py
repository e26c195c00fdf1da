"""Bringing people back by email: a customer whose agent's reply stays unread, an agent away from every
console whose customer returns or who is assigned a conversation.

The customer's email is decided by the scheduler (`send_due`) once a reply has been unread on every
device for the workstream's `notify_email_after_minutes` and no widget of theirs is connected; reading
before then cancels it (read_state.py), and one email carries every unread reply. After an email the
next one waits a full delay again. The email links back to the site's page (`notify_return_url`) with a
signed, expiring fragment that makes the widget open on the conversation; it carries no token and grants
nothing (the site's own sign-in still decides who the customer is; signed_links.py). Emails leave
through outbox.py.
"""

import logging
from datetime import datetime, timedelta
from email.utils import make_msgid, parseaddr
from urllib.parse import urlsplit

import redis
from flask import current_app, render_template
from sqlalchemy import select

from . import automated_messages, clock, events, lifecycle, mail, outbox, signed_links
from .errors import ChatError
from .extensions import db
from .models import IS_CURRENT, Agent, Conversation, EmailOptOut, Message, Workstream

log = logging.getLogger(__name__)


def unsubscribe(token: object) -> Workstream:
    """RFC 8058's one-click unsubscribe: no more emails to this customer from this workstream. Agents
    see "email notifications off" on the customer's conversations."""
    found = signed_links.unsubscriber(token)
    if found is None:
        raise ChatError(400, "invalid_link", "This unsubscribe link is not one of ours.")
    customer, workstream = found
    if db.session.get(EmailOptOut, (customer.id, workstream.id)) is None:
        db.session.add(EmailOptOut(customer_id=customer.id, workstream_id=workstream.id, created_at=clock.now()))
        db.session.flush()
        for conversation in db.session.scalars(
            select(Conversation).where(
                Conversation.customer_id == customer.id,
                Conversation.workstream_id == workstream.id,
                IS_CURRENT,
                Conversation.status.in_(("open", "active", "waiting")),
            )
        ):
            conversation.notify_due_at = None
            lifecycle.announce(conversation, widget=False)
    db.session.commit()
    return workstream


# Settings -------------------------------------------------------------------------------------------


def validate_return_url(value: object) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 2000:
        raise ChatError(400, "invalid_workstream", "notify_return_url must be an http(s) address of the site's page.")
    return value


def require_mail() -> None:
    if not mail.configured():
        raise ChatError(
            400,
            "email_not_configured",
            "Emails need an SMTP server: set SMTP_URL (and SMTP_FROM) before turning email notifications on.",
        )


def opted_out(customer_id: int, workstream_id: str) -> bool:
    return db.session.get(EmailOptOut, (customer_id, workstream_id)) is not None


def opted_out_of(conversations: list[Conversation]) -> set[tuple[int, str]] | None:
    """The (customer, workstream) pairs of these conversations that unsubscribed, in one query; None
    without SMTP_URL, where nothing is ever sent and nobody needs to know."""
    if not mail.configured():
        return None
    customers = {c.customer_id for c in conversations}
    workstreams = {c.workstream_id for c in conversations}
    rows = db.session.execute(
        select(EmailOptOut.customer_id, EmailOptOut.workstream_id).where(
            EmailOptOut.customer_id.in_(customers), EmailOptOut.workstream_id.in_(workstreams)
        )
    )
    return {(customer_id, workstream_id) for customer_id, workstream_id in rows}


def view(conversation: Conversation, opted_out_pairs: set[tuple[int, str]] | None = None) -> dict:
    """The console's "Emailed 14:02" and "email notifications off"; `opted_out_pairs` is what
    opted_out_of() found for a list of conversations this one is in."""
    workstream = conversation.workstream
    if not mail.configured():
        state = "none"
    elif (
        (conversation.customer_id, workstream.id) in opted_out_pairs
        if opted_out_pairs is not None
        else opted_out(conversation.customer_id, workstream.id)
    ):
        state = "off"
    elif conversation.customer.email and workstream.notify_email_after_minutes:
        state = "on"
    else:
        state = "none"
    return {
        "notifications": state,
        "status": conversation.email_status,
        "sent_at": clock.iso(conversation.emailed_at),
        "error": conversation.email_error,
    }


# The customer's unread replies ----------------------------------------------------------------------


def reply_posted(conversation: Conversation) -> None:
    """An agent replied (in that transaction): the email falls due after the delay, or a full delay
    after the last email, unless one is already due (it will carry this reply too)."""
    if not mail.configured() or conversation.notify_due_at is not None:
        return
    minutes = conversation.workstream.notify_email_after_minutes
    if not minutes:
        return
    due = clock.now() + timedelta(minutes=minutes)
    if conversation.emailed_at is not None:
        due = max(due, conversation.emailed_at + timedelta(minutes=minutes))
    conversation.notify_due_at = due


def customer_read(conversation: Conversation, seq: int) -> None:
    """Reading everything before the deadline cancels the email (in the read's transaction)."""
    if conversation.notify_due_at is not None and seq >= conversation.last_seq:
        conversation.notify_due_at = None


def _listening(channel: str, unknown: bool) -> bool:
    """Is a widget (or console) open on `channel`? When Redis cannot say, `unknown` is the answer: a
    customer's email waits rather than land while they may be reading; an agent's goes."""
    try:
        return events.hub.listening(channel)
    except redis.RedisError:
        log.warning("could not ask Redis whether %s is open", channel, exc_info=True)
        return unknown


def _unread_replies(conversation: Conversation) -> list[Message]:
    return list(
        db.session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.sender_kind == "agent",
                Message.seq > conversation.customer_read_seq,
            )
            .order_by(Message.seq)
        )
    )


def _headers(conversation: Conversation, unsubscribe: str) -> dict:
    domain = parseaddr(mail.sender())[1].rpartition("@")[2] or "localhost"
    return {
        "Message-ID": make_msgid(domain=domain),
        # Every email about one conversation threads together in the customer's mailbox.
        "References": f"<conversation-{conversation.id}@{domain}>",
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
    }


def _render(name: str, lang: str, **context) -> tuple[str, str, str]:
    """(subject, text, html) from templates/email/NAME.LANG.{txt,html}; the subject is the text's first line."""
    text = render_template(f"email/{name}.{lang}.txt", **context)
    subject, _, body = text.partition("\n")
    return subject.strip(), body.lstrip("\n"), render_template(f"email/{name}.{lang}.html", **context)


def _email_customer(conversation: Conversation, replies: list[Message]) -> None:
    lang = automated_messages.language(conversation.locale)
    customer = conversation.customer
    unsubscribe = signed_links.unsubscribe_url(customer.id, conversation.workstream_id, lang)
    subject, text, html = _render(
        "customer_reply",
        lang,
        workstream=conversation.workstream,
        customer=customer,
        replies=replies,
        link=signed_links.return_link(conversation),
        unsubscribe=unsubscribe,
    )
    content = {"subject": subject, "text": text, "html": html, "headers": _headers(conversation, unsubscribe)}
    outbox.add("customer_reply", customer.email, content, conversation_id=conversation.id)


def _decide(conversation: Conversation, now: datetime) -> None:
    workstream = conversation.workstream
    minutes = workstream.notify_email_after_minutes
    conversation.notify_due_at = None
    if not minutes or not mail.configured():
        return
    customer = conversation.customer
    if not customer.email or opted_out(customer.id, workstream.id):
        return
    replies = _unread_replies(conversation)
    if not replies or replies[-1].seq <= conversation.emailed_seq:
        return
    if _listening(events.customer_channel(customer.id, workstream.id), unknown=True):
        # They are on the site with the chat at hand; ask again after another delay.
        conversation.notify_due_at = now + timedelta(minutes=minutes)
        return
    _email_customer(conversation, replies)
    conversation.emailed_seq = replies[-1].seq


def send_due(now: datetime) -> int:
    """Decide every unread-reply email that has fallen due; each in its own transaction with its outbox
    row. Returns how many were queued."""
    due = db.session.scalars(
        select(Conversation.id).where(Conversation.notify_due_at <= now).order_by(Conversation.notify_due_at)
    ).all()
    db.session.commit()
    queued = 0
    for conversation_id in due:
        # Locked on PostgreSQL, so a read committing meanwhile is seen, or waits for this decision.
        conversation = db.session.scalar(
            select(Conversation)
            .where(Conversation.id == conversation_id, Conversation.notify_due_at <= now)
            .with_for_update()
        )
        if conversation is not None:
            before = conversation.emailed_seq
            _decide(conversation, now)
            queued += conversation.emailed_seq != before
        db.session.commit()
    return queued


def tick(now: datetime) -> int:
    """The scheduler's step: decide the emails that fell due, then deliver the outbox. Returns how many
    emails were sent."""
    send_due(now)
    sent = outbox.deliver(now)
    outbox.prune(now)
    return sent


# Agents ---------------------------------------------------------------------------------------------


def agent_notified(agent_id: int, kind: str, conversation: Conversation) -> None:
    """A conversation was assigned to the agent, or its customer returned to them (in that transaction):
    with none of their consoles open, and their setting on, they get an email."""
    if not mail.configured():
        return
    agent = db.session.get(Agent, agent_id)
    if agent is None or not agent.notify_email or _listening(events.agent_channel(agent_id), unknown=False):
        return
    last = db.session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.sender_kind == "customer")
        .order_by(Message.seq.desc())
        .limit(1)
    )
    link = f"{current_app.config['PUBLIC_URL']}/console/#conversation-{conversation.id}"
    customer = conversation.customer
    subject, text, html = _render(
        f"agent_{kind}", "en", agent=agent, conversation=conversation, customer=customer, last=last, link=link
    )
    domain = parseaddr(mail.sender())[1].rpartition("@")[2] or "localhost"
    headers = {"Message-ID": make_msgid(domain=domain), "Auto-Submitted": "auto-generated"}
    content = {"subject": subject, "text": text, "html": html, "headers": headers}
    outbox.add(f"agent_{kind}", agent.email, content, conversation_id=conversation.id, agent_id=agent.id)
