"""Agents: the people answering in the console. Creating, changing, disabling and their passwords, with
one set of rules for the CLI and the admin API."""

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import delete as delete_rows
from sqlalchemy import func, select

from . import audit, checked, clock, events, lifecycle, passwords, payloads, routing
from .errors import ChatError, not_found
from .extensions import db
from .models import ROLES, Agent, CannedResponse, Conversation, Message

MAX_EMAIL_CHARS = 254
MAX_NAME_CHARS = 120
MAX_CAPACITY = 10_000
MAX_ITEMS = 1_000
FIELDS = {"email", "name", "role", "capacity", "max_items", "disabled"}
T = TypeVar("T")


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_agent", message)


def _email(value: object) -> str:
    email = value.strip().lower() if isinstance(value, str) else ""
    local, _, domain = email.partition("@")
    if not (local and domain) or len(email) > MAX_EMAIL_CHARS or any(c.isspace() for c in email):
        raise _invalid("email must be an email address.")
    return checked.clean_text(email, "email")


def _name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value.strip()) <= MAX_NAME_CHARS:
        raise _invalid(f"name must be 1 to {MAX_NAME_CHARS} characters.")
    return checked.clean_text(value.strip(), "name")


def by_email(email: str) -> Agent | None:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_CHARS or not email.isprintable():
        return None
    return db.session.scalar(select(Agent).where(func.lower(Agent.email) == email))


def find(agent_id: int) -> Agent:
    agent = db.session.get(Agent, checked.integer(agent_id, "agent id", 1))
    if agent is None:
        raise not_found("agent")
    return agent


def _outside_transaction(work: Callable[[], T]) -> T:
    """Hashing takes most of a second, so none may run inside a transaction: on SQLite an open one holds
    the write lock (BEGIN IMMEDIATE), and every other writer would wait for it in SQLite's busy wait,
    which blocks the whole process, hashes finishing in the threadpool included. Rows already loaded
    are reloaded when next used."""
    db.session.rollback()
    return work()


def authenticate(email: str, password: object) -> Agent | None:
    """The agent with this email and password, or None; disabled agents too (the caller says so)."""
    agent = by_email(email) if email else None
    password_hash = agent.password_hash if agent else None
    return agent if _outside_transaction(lambda: passwords.verify(password_hash, password)) else None


def add_agent(
    email: object, name: object, role: object = "agent", password: object = None, **settings: object
) -> tuple[Agent, str]:
    """Create an agent; returns it with its password (generated when not given)."""
    password = passwords.generate() if password is None else passwords.check_rules(password)
    email = _email(email)
    password_hash = _outside_transaction(lambda: passwords.hash_password(password))
    if by_email(email) is not None:
        raise ChatError(409, "duplicate_email", f"An agent with email {email} already exists.")
    agent = Agent(email=email, name=_name(name), role="agent", password_hash=password_hash)
    _apply(agent, {"role": role, **settings})
    db.session.add(agent)
    audit.record("agent.create", agent, None, describe(agent))
    # Colleagues' team lists show the newcomer at once.
    lifecycle.announce_agent(agent)
    db.session.commit()
    return agent, password


def _enabled_admins() -> int:
    return db.session.scalar(
        select(func.count()).select_from(Agent).where(Agent.role == "admin", Agent.disabled_at.is_(None))
    )


def _apply(agent: Agent, data: dict) -> None:
    unknown = set(data) - FIELDS
    if unknown:
        raise _invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if "email" in data:
        email = _email(data["email"])
        other = by_email(email)
        if other is not None and other is not agent:
            raise ChatError(409, "duplicate_email", f"An agent with email {email} already exists.")
        agent.email = email
    if "name" in data:
        agent.name = _name(data["name"])
    if "role" in data:
        if data["role"] not in ROLES:
            raise _invalid(f"role must be one of {', '.join(ROLES)}.")
        agent.role = data["role"]
    if "capacity" in data:
        agent.capacity = checked.integer(data["capacity"], "capacity", 0, MAX_CAPACITY)
    if "max_items" in data:
        value = data["max_items"]
        agent.max_items = None if value is None else checked.integer(value, "max_items", 1, MAX_ITEMS)
    if "disabled" in data and not isinstance(data["disabled"], bool):
        raise _invalid("disabled must be true or false.")


def update(agent: Agent, data: dict) -> Agent:
    """Change an agent's details; `disabled` disables or re-enables them. The last enabled admin
    can be neither disabled nor demoted: someone must be able to manage the rest."""
    was_admin = agent.role == "admin" and agent.disabled_at is None
    admins = _enabled_admins() if was_admin else 0
    before = describe(agent)
    try:
        _apply(agent, data)
    except ChatError:
        db.session.rollback()
        raise
    disable = data.get("disabled") is True and agent.disabled_at is None
    if was_admin and (agent.role != "admin" or disable) and admins <= 1:
        db.session.rollback()
        raise ChatError(409, "last_admin", "This is the last admin: make someone else an admin first.")
    if disable:
        _disable(agent)
    elif data.get("disabled") is False and agent.disabled_at is not None:
        agent.disabled_at = None
        lifecycle.announce_agent(agent)
    elif any(before[f] != getattr(agent, f) for f in ("name", "capacity", "max_items")):
        # Colleagues' team lists show the new name; the agent's own meter the new capacity.
        lifecycle.announce_agent(agent)
    audit.record("agent.update", agent, before, describe(agent))
    db.session.commit()
    if disable:
        routing.dispatch()
    return agent


def _disable(agent: Agent) -> None:
    """Signed out everywhere, offline, and their active conversations back to the queue (in the
    caller's transaction)."""
    agent.disabled_at = clock.now()
    active = db.session.scalars(
        select(Conversation).where(Conversation.agent_id == agent.id, Conversation.status == "active")
    )
    for conversation in list(active):
        routing.requeue(conversation, "system", None)
    if agent.presence != "offline":
        lifecycle.change_presence(agent, "offline")
    else:
        lifecycle.announce_agent(agent)
    _end_sessions(agent)


def _end_sessions(agent: Agent) -> None:
    agent.session_version += 1
    events.emit(
        db.session,
        [events.session_channel(agent.id)],
        {"type": "error", "code": "session_ended", "message": "Your session has ended. Please sign in again."},
    )


def end_sessions(agent: Agent) -> None:
    """Every session and console socket of this agent ends (signing out ends them all)."""
    _end_sessions(agent)
    db.session.commit()


def set_password(agent: Agent, password: object) -> None:
    """A new password (checked against the rules); every existing session of the agent ends."""
    password = passwords.check_rules(password)
    agent.password_hash = _outside_transaction(lambda: passwords.hash_password(password))
    audit.record("agent.password", agent, {"password": None}, {"password": "new"})
    end_sessions(agent)


def change_own_password(agent: Agent, current: object, new: object) -> None:
    password_hash = agent.password_hash
    if not _outside_transaction(lambda: passwords.verify(password_hash, current)):
        raise ChatError(403, "wrong_password", "The current password is not right.")
    set_password(agent, new)


def delete(agent: Agent) -> None:
    """Remove an agent who never had a conversation; anyone else is disabled instead, so that the
    history keeps who answered."""
    had = db.session.scalar(select(func.count()).select_from(Conversation).where(Conversation.agent_id == agent.id))
    wrote = db.session.scalar(select(func.count()).select_from(Message).where(Message.sender_agent_id == agent.id))
    if had or wrote:
        raise ChatError(409, "agent_has_conversations", "This agent has conversations: disable them instead.")
    if agent.role == "admin" and agent.disabled_at is None and _enabled_admins() <= 1:
        raise ChatError(409, "last_admin", "This is the last admin: make someone else an admin first.")
    audit.record("agent.delete", agent, describe(agent), None)
    _end_sessions(agent)
    db.session.execute(delete_rows(CannedResponse).where(CannedResponse.agent_id == agent.id))
    db.session.delete(agent)
    db.session.commit()


def describe(agent: Agent) -> dict:
    return {
        **payloads.agent(agent),
        "email": agent.email,
        "role": agent.role,
        "capacity": agent.capacity,
        "max_items": agent.max_items,
        "disabled_at": clock.iso(agent.disabled_at),
    }
