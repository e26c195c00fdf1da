"""Tables and small per-row behaviour."""

import secrets
import string
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, bindparam, false, func, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .extensions import db

# `bot`: with the workstream's bot (bots.py), before it hands over to the queue; costs no capacity.
CURRENT_STATUSES = ("open", "active", "waiting", "bot")
ENDED_STATUSES = ("wrap_up", "closed")
STATUSES = CURRENT_STATUSES + ENDED_STATUSES
MODES = ("persistent", "live")
SENDER_KINDS = ("customer", "agent", "system", "bot")
PRESENCES = ("available", "busy", "busy_dnd", "away", "offline", "inactive")
ROLES = ("agent", "supervisor", "admin")
DAY = 24 * 3600


_PUBLIC_ID_ALPHABET = string.ascii_letters + string.digits


def new_public_id() -> str:
    # Letters and digits only: an id that began with "-" would read as an option on the command line.
    return "".join(secrets.choice(_PUBLIC_ID_ALPHABET) for _ in range(12))


class AuthSetting(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    client_function: Mapped[str] = mapped_column(String(200), default="getChatToken")
    issuer: Mapped[str | None] = mapped_column(String(500))
    hs256_secret: Mapped[str | None] = mapped_column(String(200))
    clock_skew_seconds: Mapped[int] = mapped_column(default=60)
    max_lifetime_seconds: Mapped[int] = mapped_column(default=24 * 3600)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    keys: Mapped[list["AuthKey"]] = relationship(back_populates="auth_setting", order_by="AuthKey.id")


class AuthKey(db.Model):
    """A public key the site signs customer tokens with; several per setting, told apart by `kid`, so a
    site can rotate keys without downtime. Retired keys stay for the record but verify nothing."""

    __table_args__ = (UniqueConstraint("auth_setting_id", "kid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    auth_setting_id: Mapped[int] = mapped_column(ForeignKey("auth_setting.id"))
    kid: Mapped[str] = mapped_column(String(128))
    algorithm: Mapped[str] = mapped_column(String(8))
    public_key_pem: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    auth_setting: Mapped[AuthSetting] = relationship(back_populates="keys")


class Workstream(db.Model):
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_public_id)
    name: Mapped[str] = mapped_column(String(120))
    mode: Mapped[str] = mapped_column(String(16), default="persistent")
    distribution: Mapped[str] = mapped_column(String(8), default="push")
    affinity: Mapped[bool] = mapped_column(default=True)
    capacity_cost: Mapped[int] = mapped_column(default=34)
    # Space-separated presences in which agents get pushed conversations.
    allowed_presences: Mapped[str] = mapped_column(String(120), default="available", server_default="available")
    accept_seconds: Mapped[int] = mapped_column(default=120, server_default="120")
    # Wrap-up holds capacity "always" (until the agent closes it), "never", or for this many seconds.
    wrap_up_capacity: Mapped[str] = mapped_column(String(16), default="always", server_default="always")
    # With affinity: a returning conversation whose agent has been offline this long goes to the queue.
    fallback_offline_minutes: Mapped[int | None]
    # Operating hours as hours.parse() reads them; NULL is always open.
    hours: Mapped[str | None] = mapped_column(Text)
    # Live workstreams outside hours: show the widget's offline state, or no widget at all.
    hide_when_closed: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Ask the customer for a rating (1–5) when an agent ends a conversation.
    csat_enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    auto_close_open_seconds: Mapped[int] = mapped_column(default=DAY * 30, server_default=str(DAY * 30))
    auto_close_waiting_seconds: Mapped[int] = mapped_column(default=DAY * 30, server_default=str(DAY * 30))
    wrap_up_seconds: Mapped[int] = mapped_column(default=DAY, server_default=str(DAY))
    # Per kind of automated message: switched on or off, and texts per language (automated_messages.py).
    automated_messages: Mapped[str | None] = mapped_column(Text)
    # Email a customer whose agent's reply has stayed unread this long (notifications.py); NULL is off.
    notify_email_after_minutes: Mapped[int | None]
    # The site's page that embeds the widget: the email's link back goes there.
    notify_return_url: Mapped[str | None] = mapped_column(Text)
    # The widget's look (appearance.py): accent colour, launcher side, title and greeting per language.
    appearance: Mapped[str | None] = mapped_column(Text)
    # Attachment limits (attachments.py), as JSON; NULL keeps the defaults.
    attachment_limits: Mapped[str | None] = mapped_column(Text)
    auth_setting_id: Mapped[int | None] = mapped_column(ForeignKey("auth_setting.id"))
    # Closed conversations older than this many days are deleted by the scheduler (privacy.py); NULL keeps them.
    retention_days: Mapped[int | None]
    # The bot that answers new conversations first (bots.py): it hears them through its webhook, answers
    # and hands over with its API key, and is handed over from if it stays silent this long. NULL: no bot.
    bot_name: Mapped[str | None] = mapped_column(String(120))
    bot_webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhook.id", use_alter=True))
    bot_api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"))
    bot_answer_seconds: Mapped[int | None]
    # Space-separated origins (scheme://host[:port]) allowed to embed the widget.
    allowed_origins: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    auth_setting: Mapped[AuthSetting | None] = relationship()

    def origins(self) -> list[str]:
        return self.allowed_origins.split()

    def allows_origin(self, origin: str | None) -> bool:
        return bool(origin) and origin in self.origins()

    def embed_snippet(self, server_url: str) -> str:
        """The tag a site pastes: a live workstream's without a token function (its visitors are
        anonymous), a persistent one's naming its authentication setting's function."""
        tag = f'<script src="{server_url}/widget.js" data-workstream="{self.id}"'
        if self.mode == "persistent":
            function = self.auth_setting.client_function if self.auth_setting else "getChatToken"
            tag += f' data-auth-function="{function}"'
        return tag + " async></script>"


class Customer(db.Model):
    __table_args__ = (UniqueConstraint("auth_setting_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for the anonymous visitors of live workstreams, whose sub the server made up.
    auth_setting_id: Mapped[int | None] = mapped_column(ForeignKey("auth_setting.id"))
    sub: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(200))
    # The token's optional `email` claim, as of the customer's latest token.
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    def label(self) -> str:
        return self.display_name or self.sub


class Agent(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    presence_changed_at: Mapped[datetime] = mapped_column(default=clock.now, server_default=func.current_timestamp())
    # Capacity in units; `max_items`, when set, also caps how many conversations count at once.
    capacity: Mapped[int] = mapped_column(default=100)
    max_items: Mapped[int | None]
    # When a console of theirs last said it is alive: no heartbeat for the grace period means offline.
    last_seen_at: Mapped[datetime | None]
    # Routing's tie-break: among equally free agents, the one idle longest gets the next conversation.
    last_assigned_at: Mapped[datetime | None]
    # Raised by a password change, a disable and a sign-out: every session holding an older one ends.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # A disabled agent cannot sign in, gets no conversations and is left out of the team's lists.
    disabled_at: Mapped[datetime | None]
    # Email when a conversation is assigned or its customer returns while none of their consoles is open.
    notify_email: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def get_id(self) -> str:
        # What Flask-Login keeps in the session: the user loader accepts it only while the version holds.
        return f"{self.id}:{self.session_version}"


class Conversation(db.Model):
    __table_args__ = (
        Index("ix_conversation_customer_workstream", "customer_id", "workstream_id", "id"),
        Index("ix_conversation_status_agent", "status", "agent_id"),
        # Retention finds a workstream's long-closed conversations (privacy.py).
        Index("ix_conversation_retention", "workstream_id", "status", "ended_at"),
        Index("ix_conversation_created_at", "created_at"),
        # An agent's recently ended conversations, newest first (the console's lists).
        Index("ix_conversation_agent_ended", "agent_id", "ended_at", "id"),
        # At most one current conversation per customer and workstream, even with two devices racing.
        Index(
            "uq_conversation_current",
            "customer_id",
            "workstream_id",
            unique=True,
            sqlite_where=text("status IN ('open', 'active', 'waiting', 'bot')"),
            postgresql_where=text("status IN ('open', 'active', 'waiting', 'bot')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workstream_id: Mapped[str] = mapped_column(ForeignKey("workstream.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    last_seq: Mapped[int] = mapped_column(default=0)
    # Raised by every change announced to the consoles (lifecycle.announce): a console keeps the
    # summary with the highest, so a late frame never undoes a newer state or snapshot.
    version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    ended_at: Mapped[datetime | None]
    # A pushed conversation the agent has not accepted yet goes back to the queue at this time.
    offer_expires_at: Mapped[datetime | None]
    # The agent who let it go back to the queue (or a supervisor for them): routing does not push it
    # back to them while it waits there, so it is meant for someone else; they can still take it.
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    # With the bot: the customer's message it has not answered yet; past this it hands over (bots.py).
    bot_answer_due_at: Mapped[datetime | None]
    # The customer's context variables (the token's lwicontexts), as JSON, shown to the agent.
    context: Mapped[str | None] = mapped_column(Text)
    # The customer's language (from their widget), for the automated messages they get.
    locale: Mapped[str | None] = mapped_column(String(16))
    # The queue position the customer was last told, and when: updates are throttled.
    queue_position: Mapped[int | None]
    queue_told_at: Mapped[datetime | None]
    # The highest seq the customer has been shown on any device, and when (read_state.py).
    customer_read_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    customer_read_at: Mapped[datetime | None]
    # Unread-reply email (notifications.py): when it is due, the last seq an email carried; the latest
    # email's delivery (sent, retrying, failed), when it was last sent, and the SMTP server's reason.
    notify_due_at: Mapped[datetime | None] = mapped_column(index=True)
    emailed_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    email_status: Mapped[str | None] = mapped_column(String(16))
    emailed_at: Mapped[datetime | None]
    email_error: Mapped[str | None] = mapped_column(String(500))

    workstream: Mapped[Workstream] = relationship()
    customer: Mapped[Customer] = relationship()
    agent: Mapped[Agent | None] = relationship(foreign_keys=[agent_id])

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


# A customer's current conversation, with the statuses written out in the SQL: only then can SQLite's
# planner (which has no statistics) match uq_conversation_current's own WHERE and find the one row; with a
# bound list it walked every current conversation of the workstream on (workstream_id, status).
IS_CURRENT = Conversation.status.in_(
    bindparam("current_statuses", CURRENT_STATUSES, expanding=True, literal_execute=True)
)


class Message(db.Model):
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "client_id"),
        Index("ix_message_client_id", "client_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    seq: Mapped[int]
    sender_kind: Mapped[str] = mapped_column(String(16))
    sender_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    # The name as it was when sent: history shows who wrote, even after a rename.
    sender_name: Mapped[str | None] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    # Most messages carry none: the count saves them a lookup in the attachment table.
    attachment_count: Mapped[int] = mapped_column(default=0, server_default="0")


class ConversationEvent(db.Model):
    __table_args__ = (
        # A conversation's events, or those of one status (the reports' lookups per conversation).
        Index("ix_conversation_event_conversation_id_to_status", "conversation_id", "to_status"),
        # The queue's recent assignments (automated_messages.average_wait), newest first in their window.
        Index("ix_conversation_event_to_status_created_at", "to_status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class EmailOptOut(db.Model):
    """The customer's one-click unsubscribe: no more emails from this workstream."""

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    workstream_id: Mapped[str] = mapped_column(ForeignKey("workstream.id"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class OutboxEmail(db.Model):
    """An email decided in a transaction and delivered later by the scheduler (outbox.py)."""

    # Pruning finds the old rows by created_at, erasure a conversation's by its id, not by walking the rest.
    __table_args__ = (
        Index("ix_outbox_email_due", "status", "next_attempt_at"),
        Index("ix_outbox_email_created_at", "created_at"),
        Index("ix_outbox_email_conversation_id", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # customer_reply, agent_assigned, agent_returned
    kind: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    # The rendered message: {"subject", "text", "html", "headers": {name: value}}, as JSON.
    content: Mapped[str] = mapped_column(Text)
    # pending until sent or given up (failed)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]


class AuditEntry(db.Model):
    """One admin change: who made it (an agent, or the command line), to what, and each changed field's
    value before and after, secrets redacted."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(40))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(64))
    target_label: Mapped[str] = mapped_column(String(254))
    # {field: [before, after]} as JSON.
    changes: Mapped[str] = mapped_column(Text)


class Attachment(db.Model):
    """A stored file. Uploaded first (by the customer, or by the agent in one conversation), then
    claimed by the message that carries it; the conversation link is explicit so that deleting a
    conversation can find and delete its files."""

    # Random and unguessable: it names the stored object too.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workstream_id: Mapped[str] = mapped_column(ForeignKey("workstream.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"), index=True)
    # Who uploaded it: a customer (of this workstream) or an agent.
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    name: Mapped[str] = mapped_column(String(255))
    # Sniffed from the bytes, never taken from the name or the browser.
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int]
    width: Mapped[int | None]
    height: Mapped[int | None]
    has_thumbnail: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class Webhook(db.Model):
    """A URL of the site's that hears of a workstream's events (webhooks.py), signed with its secret."""

    id: Mapped[int] = mapped_column(primary_key=True)
    workstream_id: Mapped[str] = mapped_column(ForeignKey("workstream.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    # Space-separated event types (webhooks.EVENTS).
    events: Mapped[str] = mapped_column(Text)
    # HMAC-SHA256 key: kept as is, since the server must sign with it.
    secret: Mapped[str] = mapped_column(String(100))
    # Switched off by an admin, or by the receiver answering 410 Gone.
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    def wants(self, event: str) -> bool:
        return event in self.events.split()


class OutboxWebhook(db.Model):
    """One event for one webhook, written in the transaction of the change and delivered by the
    scheduler (outbox.py), in order per webhook and conversation."""

    __table_args__ = (
        Index("ix_outbox_webhook_due", "status", "next_attempt_at"),
        Index("ix_outbox_webhook_order", "webhook_id", "conversation_id", "status", "id"),
        Index("ix_outbox_webhook_created_at", "created_at"),
        Index("ix_outbox_webhook_conversation_id", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id"))
    # The event's id, in the body: a repeat (a redelivery, or a crash after the receiver answered) has the same.
    event_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversation.id"))
    # The JSON body, exactly as sent and signed.
    payload: Mapped[str] = mapped_column(Text)
    # pending until sent or given up (failed)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=clock.now)
    response_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    sent_at: Mapped[datetime | None]


class ApiKey(db.Model):
    """A key the site's backend calls the server API with (api_keys.py): only its hash is stored."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # The key's public part, shown in lists and used to find it; the rest is secret.
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    # SHA-256 of the whole key: a key is 256 random bits, so a slow hash would protect nothing more.
    key_hash: Mapped[str] = mapped_column(String(64))
    # Space-separated workstream ids the key may read and write.
    workstream_ids: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def allows(self, workstream_id: str) -> bool:
        return self.revoked_at is None and workstream_id in self.workstream_ids.split()


class Note(db.Model):
    """An agent's internal note on a conversation. Not a Message: it takes no seq and is never on a
    customer's channel, so no route that serves customers can reach one."""

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id"))
    # The name as it was when written, like Message.sender_name.
    author_name: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    # Where it sits in the thread: after the message with this seq.
    after_seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class CannedResponse(db.Model):
    """A prepared answer the agent inserts by its shortcut: shared (agent_id NULL, kept by admins) or an
    agent's own; `locale` NULL is for any language, `workstream_id` NULL for every workstream."""

    __table_args__ = (Index("ix_canned_response_agent_shortcut", "agent_id", "shortcut"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    workstream_id: Mapped[str | None] = mapped_column(ForeignKey("workstream.id"))
    shortcut: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)


class Label(db.Model):
    """A label admins define for agents to put on conversations."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    # "#rrggbb"
    colour: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


class ConversationLabel(db.Model):
    __table_args__ = (Index("ix_conversation_label_label", "label_id", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("label.id"), primary_key=True)


class Rating(db.Model):
    """The customer's satisfaction rating (CSAT) of a conversation an agent ended: one per conversation."""

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), primary_key=True)
    score: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
