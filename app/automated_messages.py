"""Automated messages: what the system itself tells a customer in their conversation.

Each kind can be switched on or off per workstream and its text overridden per workstream and language.
Texts take placeholders: {AgentName}, {QueueName}, {Position}, {WaitTime} and the conversation's context
variables by name; a placeholder nothing fills stays as written. Persistent workstreams never send the
queue messages (position, wait time, next in line), and by default send none of the others either: their
conversations last for weeks, and the widget already shows who answers and when the team is back.

The average wait time is the mean time from entering the queue to being assigned, over the workstream's
last WAIT_SAMPLE assignments in the past WAIT_WINDOW; with none, no wait-time message is sent.
"""

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, select, update

from . import clock, lifecycle
from .errors import ChatError
from .extensions import db
from .models import Agent, Conversation, ConversationEvent, Workstream

KINDS = (
    "agent_joined",
    "agent_ended",
    "closed",
    "no_agent",
    "out_of_hours",
    "holiday",
    "position",
    "wait_time",
    "next_in_line",
)
QUEUE_KINDS = frozenset({"position", "wait_time", "next_in_line"})
LANGUAGES = ("en", "fi")
MAX_TEXT_CHARS = 1000
WAIT_SAMPLE = 20
WAIT_WINDOW = timedelta(hours=24)

DEFAULT_TEXTS = {
    "en": {
        "agent_joined": "{AgentName} joined the chat.",
        "agent_ended": "{AgentName} ended the chat.",
        "closed": "This chat has been closed.",
        "no_agent": "No one is available to answer right now. Stay in the chat and we will answer as soon as we can.",
        "out_of_hours": "The chat is closed right now.",
        "holiday": "The chat is closed today for a holiday.",
        "position": "You are number {Position} in the queue for {QueueName}.",
        "wait_time": "The average wait is {WaitTime}.",
        "next_in_line": "You are next in line.",
    },
    "fi": {
        "agent_joined": "{AgentName} liittyi keskusteluun.",
        "agent_ended": "{AgentName} päätti keskustelun.",
        "closed": "Keskustelu on suljettu.",
        "no_agent": "Kukaan ei ehdi vastata juuri nyt. Pysy keskustelussa, niin vastaamme heti kun voimme.",
        "out_of_hours": "Chat on nyt suljettu.",
        "holiday": "Chat on tänään suljettu pyhäpäivän vuoksi.",
        "position": "Olet jonossa sijalla {Position} ({QueueName}).",
        "wait_time": "Keskimääräinen odotusaika on {WaitTime}.",
        "next_in_line": "Olet seuraavana vuorossa.",
    },
}

# The placeholders each kind fills; a name starting with a lower-case letter is a context variable.
PLACEHOLDERS = {
    "agent_joined": ("AgentName", "QueueName"),
    "agent_ended": ("AgentName", "QueueName"),
    "closed": ("AgentName", "QueueName"),
    "no_agent": ("QueueName",),
    "out_of_hours": ("QueueName",),
    "holiday": ("QueueName",),
    "position": ("Position", "QueueName"),
    "wait_time": ("WaitTime", "QueueName"),
    "next_in_line": ("QueueName",),
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*")


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_workstream", message)


def validate(value: object) -> str | None:
    """The admin's settings, checked, as stored: {kind: {"enabled": bool, "texts": {language: text}}}."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("automated_messages must be an object keyed by message kind.")
    unknown = sorted(str(kind) for kind in value.keys() - set(KINDS))
    if unknown:
        raise _invalid(f"Unknown automated message kind(s): {', '.join(unknown)}; known: {', '.join(KINDS)}.")
    settings: dict[str, dict] = {}
    for kind, setting in value.items():
        if not isinstance(setting, dict) or not setting.keys() <= {"enabled", "texts"}:
            raise _invalid(f'automated_messages.{kind} must be an object with "enabled" and/or "texts".')
        entry: dict = {}
        if "enabled" in setting:
            if not isinstance(setting["enabled"], bool):
                raise _invalid(f"automated_messages.{kind}.enabled must be true or false.")
            entry["enabled"] = setting["enabled"]
        texts = setting.get("texts", {})
        if not isinstance(texts, dict):
            raise _invalid(f"automated_messages.{kind}.texts must map language codes to texts.")
        for language, text in texts.items():
            if not _LANGUAGE.match(language):
                raise _invalid(f'automated_messages.{kind}.texts: {language!r} is not a language code such as "fi".')
            if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_TEXT_CHARS:
                raise _invalid(f"automated_messages.{kind}.texts.{language} must be 1 to {MAX_TEXT_CHARS} characters.")
            _check_placeholders(kind, language, text)
        if texts:
            entry["texts"] = {language: text.strip() for language, text in texts.items()}
        settings[kind] = entry
    return json.dumps(settings, sort_keys=True, ensure_ascii=False) if settings else None


def _check_placeholders(kind: str, language: str, text: str) -> None:
    for name in _PLACEHOLDER.findall(text):
        if name[0].isupper() and name not in PLACEHOLDERS[kind]:
            raise _invalid(
                f"automated_messages.{kind}.texts.{language}: unknown placeholder {{{name}}}; this message"
                f" knows {', '.join('{' + p + '}' for p in PLACEHOLDERS[kind])} and context variables by name."
            )


def settings(workstream: Workstream) -> dict:
    return json.loads(workstream.automated_messages) if workstream.automated_messages else {}


def enabled(workstream: Workstream, kind: str) -> bool:
    if workstream.mode == "persistent" and kind in QUEUE_KINDS:
        return False
    return settings(workstream).get(kind, {}).get("enabled", workstream.mode == "live")


def validate_locale(locale: object) -> str | None:
    """The widget's language tag (e.g. "fi" or "en-GB"), or None when it sent none."""
    if locale is None:
        return None
    if not isinstance(locale, str) or len(locale) > 35 or not _LANGUAGE_TAG.fullmatch(locale):
        raise ChatError(400, "invalid_request", "locale must be a language tag such as fi or en-GB.")
    return locale


def language(locale: str | None) -> str:
    """The primary language of a BCP 47 tag ("fi-FI" → "fi"); English when there is none."""
    primary = (locale or "").split("-")[0].split("_")[0].lower()
    return primary if _LANGUAGE.match(primary) else "en"


def text(workstream: Workstream, kind: str, locale: str | None, values: dict[str, object]) -> str:
    """The text in the customer's language: the workstream's own, else ours, else the workstream's
    English, else ours in English; placeholders filled from `values`."""
    lang = language(locale)
    own = settings(workstream).get(kind, {}).get("texts", {})
    template = own.get(lang) or DEFAULT_TEXTS.get(lang, {}).get(kind) or own.get("en") or DEFAULT_TEXTS["en"][kind]
    fill = {str(k): str(v) for k, v in values.items() if v is not None}
    return _PLACEHOLDER.sub(lambda m: fill.get(m.group(1), m.group(0)), template)


def _values(conversation: Conversation, extra: dict[str, object]) -> dict[str, object]:
    context = json.loads(conversation.context) if conversation.context else {}
    agent = conversation.agent
    return {
        **context,
        "QueueName": conversation.workstream.name,
        "AgentName": agent.name if agent else None,
        **extra,
    }


def post(conversation: Conversation, kind: str, **extra: object) -> bool:
    """Say `kind` in the conversation (in the caller's transaction) if the workstream has it on."""
    workstream = conversation.workstream
    if not enabled(workstream, kind):
        return False
    body = text(workstream, kind, conversation.locale, _values(conversation, extra))
    lifecycle.append_message(conversation, "system", body, None)
    return True


def closed_notice(workstream: Workstream, now: datetime, holiday: bool, locale: str | None) -> str | None:
    """What the widget shows outside operating hours, when the workstream has that message on."""
    kind = "holiday" if holiday else "out_of_hours"
    if not enabled(workstream, kind):
        return None
    return text(workstream, kind, locale, {"QueueName": workstream.name})


# Waiting in the queue ----------------------------------------------------------------------------------


def recent_assignments(workstream_id: str, now: datetime) -> Select:
    """The workstream's last WAIT_SAMPLE assignments from the queue in WAIT_WINDOW: found newest first in
    the window's status events, never by walking the workstream's whole history."""
    return (
        select(ConversationEvent.conversation_id, ConversationEvent.created_at)
        .join(Conversation, Conversation.id == ConversationEvent.conversation_id)
        .where(
            Conversation.workstream_id == workstream_id,
            ConversationEvent.from_status == "open",
            ConversationEvent.to_status == "active",
            ConversationEvent.created_at >= now - WAIT_WINDOW,
        )
        .order_by(ConversationEvent.created_at.desc(), ConversationEvent.id.desc())
        .limit(WAIT_SAMPLE)
    )


def average_wait(workstream_id: str, now: datetime) -> timedelta | None:
    """Mean queue time of the workstream's recent assignments (see the module's docstring)."""
    assignments = db.session.execute(recent_assignments(workstream_id, now)).all()
    if not assignments:
        return None
    queued: dict[int, list[datetime]] = defaultdict(list)
    for conversation_id, at in db.session.execute(
        select(ConversationEvent.conversation_id, ConversationEvent.created_at).where(
            ConversationEvent.conversation_id.in_({c for c, _ in assignments}),
            ConversationEvent.to_status == "open",
        )
    ):
        queued[conversation_id].append(at)
    waits = []
    for conversation_id, assigned_at in assignments:
        entered = [at for at in queued[conversation_id] if at <= assigned_at]
        if entered:
            waits.append((assigned_at - max(entered)).total_seconds())
    return timedelta(seconds=sum(waits) / len(waits)) if waits else None


DURATION_WORDS = {
    "en": {
        "under_minute": "less than a minute",
        "minute": "about a minute",
        "minutes": "about {n} minutes",
        "hour": "about an hour",
        "hours": "about {n} hours",
    },
    "fi": {
        "under_minute": "alle minuutti",
        "minute": "noin minuutti",
        "minutes": "noin {n} minuuttia",
        "hour": "noin tunti",
        "hours": "noin {n} tuntia",
    },
}


def duration(wait: timedelta, locale: str | None) -> str:
    """A wait rounded for people: under a minute, whole minutes below an hour, whole hours above."""
    words = DURATION_WORDS.get(language(locale), DURATION_WORDS["en"])
    seconds = wait.total_seconds()
    if seconds < 60:
        return words["under_minute"]
    # Halves round up (Python's round() would make 2.5 hours "about 2 hours").
    minutes = int(seconds / 60 + 0.5)
    if minutes < 60:
        return words["minute"] if minutes == 1 else words["minutes"].format(n=minutes)
    hours = int(minutes / 60 + 0.5)
    return words["hour"] if hours == 1 else words["hours"].format(n=hours)


def _anyone_in(workstream: Workstream) -> bool:
    return (
        db.session.scalar(select(Agent.id).where(Agent.presence.in_(workstream.allowed_presences.split())).limit(1))
        is not None
    )


def queue_updates(now: datetime | None = None) -> int:
    """Tell customers queued in live workstreams where they stand: on joining the queue their position,
    the average wait (and that no one is in, if so); then their new position when it changes, at most
    every QUEUE_UPDATE_SECONDS; "next in line" on reaching the front. Returns how many were told.

    Called after routing and on every scheduler tick; the compare-and-set on the conversation keeps two
    processes from telling the same news twice.
    """
    now = now or clock.now()
    interval = timedelta(seconds=current_app.config["QUEUE_UPDATE_SECONDS"])
    queued = db.session.execute(
        select(Conversation.id, Conversation.workstream_id, Conversation.queue_position, Conversation.queue_told_at)
        .join(Workstream, Conversation.workstream_id == Workstream.id)
        .where(Conversation.status == "open", Conversation.agent_id.is_(None), Workstream.mode == "live")
        .order_by(Conversation.workstream_id, Conversation.id)
    ).all()
    due: list[tuple[int, int, int | None]] = []
    position: dict[str, int] = defaultdict(int)
    for conversation_id, workstream_id, told, told_at in queued:
        position[workstream_id] += 1
        now_at = position[workstream_id]
        if told is None or (now_at != told and (told_at is None or now - told_at >= interval)):
            due.append((conversation_id, now_at, told))
    db.session.commit()
    told_count = 0
    for conversation_id, now_at, told in due:
        table = Conversation.__table__
        claimed = db.session.execute(
            update(table)
            .where(
                table.c.id == conversation_id,
                table.c.status == "open",
                table.c.agent_id.is_(None),
                table.c.queue_position.is_(None) if told is None else table.c.queue_position == told,
            )
            .values(queue_position=now_at, queue_told_at=now)
        ).rowcount
        if claimed != 1:
            db.session.rollback()
            continue
        conversation = db.session.get(Conversation, conversation_id)
        workstream = conversation.workstream
        post(conversation, "position", Position=now_at)
        if told is None:
            wait = average_wait(workstream.id, now) if enabled(workstream, "wait_time") else None
            if wait is not None:
                post(conversation, "wait_time", WaitTime=duration(wait, conversation.locale))
            if not _anyone_in(workstream):
                post(conversation, "no_agent")
        if now_at == 1:
            post(conversation, "next_in_line")
        db.session.commit()
        told_count += 1
    return told_count
