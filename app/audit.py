"""The audit log: every change an admin makes to workstreams, authentication settings, agents, labels and
the shared canned responses, from the pages, the JSON API or the command line, written in the
transaction that makes the change."""

import json

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import select

from . import clock
from .extensions import db
from .models import Agent, AuditEntry, AuthSetting, CannedResponse, Label, Workstream

PAGE_SIZE = 50
REDACTED = "[redacted]"
# Fields whose values never reach the log, only the fact that they changed.
SECRET_FIELDS = frozenset({"password", "hs256_secret"})

Target = Agent | AuthSetting | Workstream | Label | CannedResponse
KINDS = {
    Agent: "agent",
    AuthSetting: "auth_setting",
    Workstream: "workstream",
    Label: "label",
    CannedResponse: "canned_response",
}


def _actor() -> tuple[str, int | None, str]:
    if has_request_context() and current_user.is_authenticated:
        return "agent", current_user.id, current_user.email
    return "cli", None, "command line"


def _label(target: Target) -> str:
    if isinstance(target, Agent):
        return target.email
    if isinstance(target, CannedResponse):
        return f"/{target.shortcut}"
    return target.name


def changes(before: dict | None, after: dict | None) -> dict:
    """{field: [before, after]} for the fields that differ, secrets redacted."""
    before, after = before or {}, after or {}
    found = {}
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old != new:
            found[field] = [REDACTED, REDACTED] if field in SECRET_FIELDS else [old, new]
    return found


def record(action: str, target: Target, before: dict | None = None, after: dict | None = None) -> None:
    """Log a change in the caller's transaction; a change that changed nothing is not logged."""
    found = changes(before, after)
    if not found and before is not None and after is not None:
        return
    db.session.flush()  # a new target gets its id
    kind, actor_id, actor_label = _actor()
    db.session.add(
        AuditEntry(
            actor_kind=kind,
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            target_kind=KINDS[type(target)],
            target_id=str(target.id),
            target_label=_label(target)[:254],
            changes=json.dumps(found, ensure_ascii=False, default=str),
        )
    )


def record_anonymous(action: str, target_kind: str, actor_kind: str, actor_id: int | None, actor_label: str) -> None:
    """Log that something was done to a kind of thing, and by whom, but not to which one (an erasure
    must not keep what it erased)."""
    db.session.add(
        AuditEntry(
            actor_kind=actor_kind,
            actor_id=actor_id,
            actor_label=actor_label[:254],
            action=action,
            target_kind=target_kind,
            target_id="",
            target_label="",
            changes="{}",
        )
    )


def page(before_id: int | None = None, limit: int = PAGE_SIZE) -> tuple[list[AuditEntry], bool]:
    """Newest first; the second value says whether older entries remain."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    found = list(db.session.scalars(query))
    return found[:limit], len(found) > limit


def describe(entry: AuditEntry) -> dict:
    return {
        "id": entry.id,
        "at": clock.iso(entry.created_at),
        "actor": {"kind": entry.actor_kind, "id": entry.actor_id, "label": entry.actor_label},
        "action": entry.action,
        "target": {"kind": entry.target_kind, "id": entry.target_id, "label": entry.target_label},
        "changes": json.loads(entry.changes),
    }
