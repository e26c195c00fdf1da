"""Creating and changing workstreams, validated in one place for the CLI and the admin API."""

import json
from urllib.parse import urlsplit

from . import appearance, attachments, audit, automated_messages, bots, hours, notifications
from .errors import ChatError
from .extensions import db
from .models import MODES, AuthSetting, Workstream

MINUTE, DAY = 60, 24 * 3600
# Per mode: open conversations auto-close, waiting auto-close and wrap-up in seconds; and
# the unread-reply email: persistent customers come back later, a live chat is over when they leave.
MODE_DEFAULTS = {
    "persistent": {
        "auto_close_open_seconds": 30 * DAY,
        "auto_close_waiting_seconds": 30 * DAY,
        "wrap_up_seconds": DAY,
        "notify_email_after_minutes": 10,
    },
    "live": {
        "auto_close_open_seconds": 20 * MINUTE,
        "auto_close_waiting_seconds": 20 * MINUTE,
        "wrap_up_seconds": 15 * MINUTE,
        "notify_email_after_minutes": None,
    },
}
PRESENCE_CHOICES = ("available", "busy", "busy_dnd", "away")
INTEGER_FIELDS = {
    "capacity_cost": (1, 10_000),
    "accept_seconds": (10, 3600),
    "fallback_offline_minutes": (1, 7 * 24 * 60),
    "auto_close_open_seconds": (60, 365 * DAY),
    "auto_close_waiting_seconds": (60, 365 * DAY),
    "wrap_up_seconds": (0, 30 * DAY),
    "notify_email_after_minutes": (1, 7 * 24 * 60),
    # Closed conversations are deleted this many days after they ended (privacy.py); null keeps them.
    "retention_days": (1, 100 * 365),
}
# Past a month, "always" says the same; the limit keeps ended_at + this many seconds a valid date.
MAX_WRAP_UP_CAPACITY_SECONDS = 30 * DAY
NULLABLE = {"fallback_offline_minutes", "notify_email_after_minutes", "retention_days"}
FIELDS = {
    "name",
    "mode",
    "distribution",
    "affinity",
    "hide_when_closed",
    "csat_enabled",
    "auth_setting_id",
    "allowed_origins",
    "allowed_presences",
    "wrap_up_capacity",
    "hours",
    "automated_messages",
    "notify_return_url",
    "appearance",
    "attachment_limits",
    "bot",
    *INTEGER_FIELDS,
}


MAX_ORIGIN_CHARS = 300
MAX_ORIGINS = 100


def _invalid(message: str) -> ChatError:
    return ChatError(400, "invalid_workstream", message)


def _origin(value: object) -> str:
    try:
        parts = urlsplit(value) if isinstance(value, str) and len(value) <= MAX_ORIGIN_CHARS else None
        # Reading the port validates it ("http://h:99999" and "http://h:x" raise).
        _ = parts and parts.port
    except ValueError:
        parts = None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise _invalid(f"{value!r} is not an origin such as https://shop.example.")
    return f"{parts.scheme}://{parts.netloc}"


def origin(value: object) -> str:
    """`value` as the origin the browser sends (scheme://host[:port]), or a refusal saying why not."""
    return _origin(value)


def _apply(workstream: Workstream, data: dict) -> None:
    unknown = set(data) - FIELDS
    if unknown:
        raise _invalid(f"Unknown fields: {', '.join(sorted(unknown))}.")
    if "name" in data:
        if not isinstance(data["name"], str) or not 1 <= len(data["name"].strip()) <= 120:
            raise _invalid("name must be 1 to 120 characters.")
        workstream.name = data["name"].strip()
    for flag in ("affinity", "hide_when_closed", "csat_enabled"):
        if flag in data:
            if not isinstance(data[flag], bool):
                raise _invalid(f"{flag} must be true or false.")
            setattr(workstream, flag, data[flag])
    if "auth_setting_id" in data:
        setting_id = data["auth_setting_id"]
        setting = db.session.get(AuthSetting, setting_id) if isinstance(setting_id, int) else None
        if setting_id is not None and setting is None:
            raise _invalid(f"No authentication setting {setting_id!r}.")
        workstream.auth_setting = setting
    if "allowed_origins" in data:
        if not isinstance(data["allowed_origins"], list) or len(data["allowed_origins"]) > MAX_ORIGINS:
            raise _invalid(f"allowed_origins must be a list of at most {MAX_ORIGINS} origins.")
        workstream.allowed_origins = " ".join(dict.fromkeys(_origin(o) for o in data["allowed_origins"]))
    if "allowed_presences" in data:
        presences = data["allowed_presences"]
        if (
            not isinstance(presences, list)
            or not presences
            or not all(isinstance(p, str) and p in PRESENCE_CHOICES for p in presences)
        ):
            raise _invalid(f"allowed_presences must be a non-empty list of {', '.join(PRESENCE_CHOICES)}.")
        workstream.allowed_presences = " ".join(dict.fromkeys(presences))
    if "wrap_up_capacity" in data:
        rule = data["wrap_up_capacity"]
        seconds = isinstance(rule, int) and not isinstance(rule, bool) and 0 <= rule <= MAX_WRAP_UP_CAPACITY_SECONDS
        if not (rule in ("always", "never") or seconds):
            raise _invalid(
                'wrap_up_capacity must be "always", "never" or a number of seconds'
                f" up to {MAX_WRAP_UP_CAPACITY_SECONDS}."
            )
        workstream.wrap_up_capacity = str(rule)
    if "hours" in data:
        calendar = hours.parse(data["hours"]) if data["hours"] else None
        workstream.hours = json.dumps(hours.to_spec(calendar)) if calendar else None
    if "automated_messages" in data:
        workstream.automated_messages = automated_messages.validate(data["automated_messages"])
    if "notify_return_url" in data:
        workstream.notify_return_url = notifications.validate_return_url(data["notify_return_url"])
    if data.get("notify_email_after_minutes") is not None:
        # Turning email on without a way to send it would look like a promise nobody keeps.
        notifications.require_mail()
    if "appearance" in data:
        workstream.appearance = appearance.validate(data["appearance"])
    if "attachment_limits" in data:
        workstream.attachment_limits = attachments.validate_limits(data["attachment_limits"])
    if "bot" in data:
        bots.apply(workstream, data["bot"])
    for field, (low, high) in INTEGER_FIELDS.items():
        if field in data:
            value = data[field]
            nullable = field in NULLABLE
            if value is None and nullable:
                setattr(workstream, field, None)
                continue
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise _invalid(f"{field} must be an integer from {low} to {high}{' or null' if nullable else ''}.")
            setattr(workstream, field, value)
    if workstream.mode == "persistent":
        if workstream.auth_setting is None:
            raise _invalid("A persistent workstream needs an authentication setting: its customers sign in.")
        if not workstream.affinity:
            raise _invalid(
                "A persistent workstream keeps the same agent for the whole conversation: affinity must be on."
            )


def create(data: dict) -> Workstream:
    mode = data.get("mode", "persistent")
    if mode not in MODES:
        raise _invalid(f"mode must be one of {', '.join(MODES)}.")
    distribution = data.get("distribution", "push")
    if distribution not in ("push", "pick"):
        raise _invalid('distribution must be "push" or "pick".')
    workstream = Workstream(
        mode=mode, distribution=distribution, affinity=True, allowed_origins="", **MODE_DEFAULTS[mode]
    )
    _apply(workstream, {k: v for k, v in data.items() if k not in ("mode", "distribution")})
    if not workstream.name:
        raise _invalid("name is required.")
    db.session.add(workstream)
    db.session.flush()  # the public id the log names it by
    audit.record("workstream.create", workstream, None, describe(workstream))
    db.session.commit()
    return workstream


def update(workstream: Workstream, data: dict) -> Workstream:
    """Change settings; the mode and the distribution are fixed at creation."""
    for fixed in ("mode", "distribution"):
        if fixed in data and data[fixed] != getattr(workstream, fixed):
            raise _invalid(f"{fixed} is fixed when a workstream is created.")
    before = describe(workstream)
    try:
        _apply(workstream, {k: v for k, v in data.items() if k not in ("mode", "distribution")})
    except ChatError:
        db.session.rollback()
        raise
    audit.record("workstream.update", workstream, before, describe(workstream))
    db.session.commit()
    return workstream


def describe(w: Workstream) -> dict:
    return {
        "id": w.id,
        "name": w.name,
        "mode": w.mode,
        "distribution": w.distribution,
        "affinity": w.affinity,
        "hide_when_closed": w.hide_when_closed,
        "csat_enabled": w.csat_enabled,
        "auth_setting_id": w.auth_setting_id,
        "allowed_origins": w.origins(),
        "allowed_presences": w.allowed_presences.split(),
        "wrap_up_capacity": w.wrap_up_capacity
        if w.wrap_up_capacity in ("always", "never")
        else int(w.wrap_up_capacity),
        "hours": json.loads(w.hours) if w.hours else None,
        "automated_messages": automated_messages.settings(w),
        "notify_return_url": w.notify_return_url,
        "appearance": appearance.settings(w),
        "attachment_limits": vars(attachments.limits_for(w)),
        "bot": bots.describe(w),
        **{field: getattr(w, field) for field in INTEGER_FIELDS},
    }
