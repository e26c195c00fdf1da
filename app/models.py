"""Tables and small per-row behaviour."""

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, false, func, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from . import clock
from .extensions import db

CURRENT_STATUSES = ("open", "active", "waiting")
ENDED_STATUSES = ("wrap_up", "closed")
STATUSES = CURRENT_STATUSES + ENDED_STATUSES
MODES = ("persistent", "live")
SENDER_KINDS = ("customer", "agent", "system")
PRESENCES = ("available", "busy", "busy_dnd", "away", "offline", "inactive")
ROLES = ("agent", "supervisor", "admin")
DAY = 24 * 3600


def new_public_id() -> str:
    return secrets.token_urlsafe(9)


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
    auth_setting_id: Mapped[int | None] = mapped_column(ForeignKey("auth_setting.id"))
    # Space-separated origins (scheme://host[:port]) allowed to embed the widget.
    allowed_origins: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    auth_setting: Mapped[AuthSetting | None] = relationship()

    def origins(self) -> list[str]:
        return self.allowed_origins.split()

    def allows_origin(self, origin: str | None) -> bool:
        return bool(origin) and origin in self.origins()

    def embed_snippet(self, server_url: str) -> str:
        function = self.auth_setting.client_function if self.auth_setting else "getChatToken"
        return (
            f'<script src="{server_url}/widget.js" data-workstream="{self.id}" '
            f'data-auth-function="{function}" async></script>'
        )


class Customer(db.Model):
    __table_args__ = (UniqueConstraint("auth_setting_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for the anonymous visitors of live workstreams, whose sub the server made up.
    auth_setting_id: Mapped[int | None] = mapped_column(ForeignKey("auth_setting.id"))
    sub: Mapped[str] = mapped_column(String(256))
    display_name: Mapped[str | None] = mapped_column(String(200))
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
    created_at: Mapped[datetime] = mapped_column(default=clock.now)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class Conversation(db.Model):
    __table_args__ = (
        Index("ix_conversation_customer_workstream", "customer_id", "workstream_id", "id"),
        Index("ix_conversation_status_agent", "status", "agent_id"),
        Index("ix_conversation_created_at", "created_at"),
        # At most one current conversation per customer and workstream, even with two devices racing.
        Index(
            "uq_conversation_current",
            "customer_id",
            "workstream_id",
            unique=True,
            sqlite_where=text("status IN ('open', 'active', 'waiting')"),
            postgresql_where=text("status IN ('open', 'active', 'waiting')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workstream_id: Mapped[str] = mapped_column(ForeignKey("workstream.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    last_seq: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(default=clock.now)
    ended_at: Mapped[datetime | None]
    # A pushed conversation the agent has not accepted yet goes back to the queue at this time.
    offer_expires_at: Mapped[datetime | None]
    # The customer's context variables (the token's lwicontexts), as JSON, shown to the agent.
    context: Mapped[str | None] = mapped_column(Text)
    # The customer's language (from their widget), for the automated messages they get.
    locale: Mapped[str | None] = mapped_column(String(16))
    # The queue position the customer was last told, and when: updates are throttled.
    queue_position: Mapped[int | None]
    queue_told_at: Mapped[datetime | None]

    workstream: Mapped[Workstream] = relationship()
    customer: Mapped[Customer] = relationship()
    agent: Mapped[Agent | None] = relationship()

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


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


class ConversationEvent(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=clock.now)


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
    agent's own; `locale` NULL is for any language."""

    __table_args__ = (Index("ix_canned_response_agent_shortcut", "agent_id", "shortcut"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id"))
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
