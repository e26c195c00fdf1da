"""The workstream pages: the list and creation, then per workstream its settings, operating hours,
automated messages, appearance and embed snippet."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app, jsonify, redirect, request, url_for
from sqlalchemy import select

from .. import api_keys, appearance, automated_messages, bots, clock, hours, workstreams
from ..errors import ChatError, not_found
from ..extensions import db
from ..models import ApiKey, AuthSetting, Webhook, Workstream
from . import bp, forms
from .pages import admin_page, page

SECTION = "admin.workstreams"
SETTINGS_FIELDS = [
    "name",
    "auth_setting_id",
    "allowed_origins",
    "capacity_cost",
    "allowed_presences",
    "accept_seconds",
    "wrap_up_capacity",
    "fallback_offline_minutes",
    "auto_close_open_seconds",
    "auto_close_waiting_seconds",
    "wrap_up_seconds",
    "hide_when_closed",
    "affinity",
    "notify_email_after_minutes",
    "notify_return_url",
    "retention_days",
    "csat_enabled",
]
HOURS_ALIASES = {
    **{f"day_{day}": (f"weekly.{day}",) for day in hours.DAY_NAMES},
    "holidays": ("holidays",),
    "timezone": ("timezone",),
}
DAY_LABELS = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
KIND_LABELS = {
    "agent_joined": "An agent joined",
    "agent_ended": "The agent ended the chat",
    "closed": "The chat was closed",
    "no_agent": "No agent available",
    "out_of_hours": "Out of hours",
    "holiday": "Holiday",
    "position": "Queue position",
    "wait_time": "Average wait",
    "next_in_line": "Next in line",
}
# What the live previews put in the placeholders.
SAMPLE_VALUES = {"AgentName": "Ada", "Position": "3", "WaitTime": "about 4 minutes"}


def _find(workstream_id: str) -> Workstream:
    workstream = db.session.get(Workstream, workstream_id)
    if workstream is None:
        raise not_found("workstream")
    return workstream


def _settings_choices() -> list[tuple[str, str]]:
    found = db.session.scalars(select(AuthSetting).order_by(AuthSetting.id))
    return [("", "None (live visitors only)")] + [(str(s.id), f"{s.name} (#{s.id})") for s in found]


def _bot_choices(w: Workstream) -> dict:
    """The webhooks and API keys a bot of this workstream can be made of."""
    hooks = db.session.scalars(select(Webhook).where(Webhook.workstream_id == w.id).order_by(Webhook.id))
    keys = [k for k in db.session.scalars(select(ApiKey).order_by(ApiKey.id)) if k.allows(w.id)]
    return {
        "webhooks": [("", "No bot")]
        + [(str(h.id), f"#{h.id} {h.url}" + ("" if h.active else " (switched off)")) for h in hooks],
        "api_keys": [("", "Choose a key")] + [(str(k.id), f"{k.name} ({api_keys.PREFIX}{k.prefix})") for k in keys],
    }


def _bot_form(form) -> dict | None:
    """The bot's fields as the domain takes them: no webhook, key or name chosen is no bot."""
    if not any(form.get(f"bot_{field}") for field in ("webhook_id", "api_key_id", "name")):
        return None
    bot = {
        "name": form.get("bot_name", ""),
        "webhook_id": forms.integer(form.get("bot_webhook_id")),
        "api_key_id": forms.integer(form.get("bot_api_key_id")),
    }
    seconds = forms.integer(form.get("bot_answer_seconds"))
    return bot if seconds is None else {**bot, "answer_seconds": seconds}


def _bot_error_field(error: ChatError) -> str | None:
    for field in bots.FIELDS:
        if f"bot.{field}" in error.message:
            return f"bot_{field}"
    return None


def server_url() -> str:
    return current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")


@bp.get("/workstreams", endpoint="workstreams")
@admin_page
def list_page():
    return _list_page()


def _list_page(errors: dict | None = None, values: dict | None = None, status: int = 200):
    found = db.session.scalars(select(Workstream).order_by(Workstream.created_at))
    return page(
        "workstreams.html",
        status,
        workstreams=list(found),
        settings=_settings_choices(),
        errors=errors or {},
        values=values or {"mode": "persistent", "distribution": "push"},
        section=SECTION,
    )


@bp.post("/workstreams", endpoint="create_workstream_page")
@admin_page
def create_page():
    form = request.form
    data = {
        "name": form.get("name", ""),
        "mode": form.get("mode"),
        "distribution": form.get("distribution"),
        "auth_setting_id": forms.integer(form.get("auth_setting_id")),
        "allowed_origins": forms.lines(form.get("allowed_origins")),
    }
    try:
        workstream = workstreams.create(data)
    except ChatError as error:
        field = forms.error_field(
            error, list(data), {"allowed_origins": ("origin",), "auth_setting_id": ("authentication setting",)}
        )
        return _list_page({field: error.message}, dict(form), error.status)
    return redirect(url_for("admin.workstream", workstream_id=workstream.id, created=1))


def _settings_values(w: Workstream) -> dict:
    described = workstreams.describe(w)
    bot = described["bot"] or {}
    return {
        **described,
        "bot_name": bot.get("name", ""),
        "bot_webhook_id": str(bot.get("webhook_id", "")),
        "bot_api_key_id": str(bot.get("api_key_id", "")),
        "bot_answer_seconds": bot.get("answer_seconds", bots.DEFAULT_ANSWER_SECONDS),
        "auth_setting_id": "" if w.auth_setting_id is None else str(w.auth_setting_id),
        "allowed_origins": "\n".join(described["allowed_origins"]),
        "wrap_up_mode": described["wrap_up_capacity"]
        if described["wrap_up_capacity"] in ("always", "never")
        else "seconds",
        "wrap_up_capacity_seconds": ""
        if isinstance(described["wrap_up_capacity"], str)
        else described["wrap_up_capacity"],
    }


def _settings_page(
    w: Workstream, errors: dict | None = None, values: dict | None = None, status: int = 200, notice: str | None = None
):
    return page(
        "workstream_settings.html",
        status,
        workstream=w,
        tab="settings",
        values=values or _settings_values(w),
        settings=_settings_choices(),
        presences=workstreams.PRESENCE_CHOICES,
        bot_choices=_bot_choices(w),
        errors=errors or {},
        notice=notice,
        section=SECTION,
    )


@bp.get("/workstreams/<workstream_id>", endpoint="workstream")
@admin_page
def settings_page(workstream_id: str):
    created = (
        "The workstream was created. Set its hours, messages and look, then embed it."
        if request.args.get("created")
        else None
    )
    return _settings_page(_find(workstream_id), notice=created)


@bp.post("/workstreams/<workstream_id>", endpoint="save_workstream")
@admin_page
def save_settings(workstream_id: str):
    w = _find(workstream_id)
    form = request.form
    wrap_up = form.get("wrap_up_mode")
    data = {
        "name": form.get("name", ""),
        "auth_setting_id": forms.integer(form.get("auth_setting_id")),
        "allowed_origins": forms.lines(form.get("allowed_origins")),
        "capacity_cost": forms.integer(form.get("capacity_cost")),
        "allowed_presences": form.getlist("allowed_presences"),
        "accept_seconds": forms.integer(form.get("accept_seconds")),
        "wrap_up_capacity": forms.integer(form.get("wrap_up_capacity_seconds")) if wrap_up == "seconds" else wrap_up,
        "fallback_offline_minutes": forms.integer(form.get("fallback_offline_minutes")),
        "auto_close_open_seconds": forms.integer(form.get("auto_close_open_seconds")),
        "auto_close_waiting_seconds": forms.integer(form.get("auto_close_waiting_seconds")),
        "wrap_up_seconds": forms.integer(form.get("wrap_up_seconds")),
        "hide_when_closed": bool(form.get("hide_when_closed")),
        "affinity": bool(form.get("affinity")),
        "notify_return_url": form.get("notify_return_url") or None,
        "retention_days": forms.integer(form.get("retention_days")),
        "csat_enabled": bool(form.get("csat_enabled")),
        "bot": _bot_form(form),
    }
    email_after = forms.integer(form.get("notify_email_after_minutes"))
    # Sent only when changed: turning email on needs SMTP_URL, keeping a setting as it is does not.
    if email_after != w.notify_email_after_minutes:
        data["notify_email_after_minutes"] = email_after
    try:
        workstreams.update(w, data)
    except ChatError as error:
        aliases = {
            "allowed_origins": ("origin",),
            "auth_setting_id": ("authentication setting",),
            "affinity": ("same agent",),
        }
        field = _bot_error_field(error) or forms.error_field(error, SETTINGS_FIELDS, aliases)
        if field == "wrap_up_capacity":
            field = "wrap_up_capacity_seconds" if wrap_up == "seconds" else "wrap_up_mode"
        values = {**dict(form), "allowed_presences": form.getlist("allowed_presences"), "mode": w.mode}
        return _settings_page(_find(workstream_id), {field: error.message}, values, error.status)
    return _settings_page(w, notice="Settings saved.")


# Operating hours ---------------------------------------------------------------------------------


def _local(instant: datetime, zone: str) -> str:
    local = instant.replace(tzinfo=UTC).astimezone(UTC if zone == "UTC" else ZoneInfo(zone))
    days_away = (local.date() - clock.now().replace(tzinfo=UTC).astimezone(local.tzinfo).date()).days
    return local.strftime("%a %H:%M" if days_away < 6 else "%a %d %b %H:%M")


def hours_preview(spec: dict | None, now: datetime | None = None) -> dict:
    """What the editor shows under the calendar: open now or not, and when that changes."""
    now = now or clock.now()
    calendar = hours.parse(spec) if spec else hours.ALWAYS_OPEN
    if not spec:
        return {"open": True, "text": "Open now (always open)"}
    zone = calendar.timezone
    if hours.is_open(calendar, now):
        change = hours.next_change(calendar, now)
        closes = f" · closes {_local(change, zone)} ({zone})" if change else ""
        return {"open": True, "text": f"Open now{closes}"}
    opening = hours.next_opening(calendar, now)
    why = "Closed today (holiday)" if hours.is_holiday(calendar, now) else "Closed now"
    when = f" · opens {_local(opening, zone)} ({zone})" if opening else " · no opening hours ahead"
    return {"open": False, "text": why + when}


def _hours_page(
    w: Workstream,
    values: dict,
    errors: dict | None = None,
    status: int = 200,
    notice: str | None = None,
    preview: dict | None = None,
):
    if preview is None:
        preview = hours_preview(json.loads(w.hours) if w.hours else None)
    return page(
        "workstream_hours.html",
        status,
        workstream=w,
        tab="hours",
        values=values,
        days=DAY_LABELS,
        zones=sorted(available_timezones() | {"UTC"}),
        preview=preview,
        errors=errors or {},
        notice=notice,
        section=SECTION,
    )


@bp.get("/workstreams/<workstream_id>/hours", endpoint="workstream_hours")
@admin_page
def hours_page(workstream_id: str):
    w = _find(workstream_id)
    return _hours_page(w, forms.hours_fields(json.loads(w.hours) if w.hours else None))


@bp.post("/workstreams/<workstream_id>/hours", endpoint="save_workstream_hours")
@admin_page
def save_hours(workstream_id: str):
    w = _find(workstream_id)
    values = {**dict(request.form), "always_open": bool(request.form.get("always_open"))}
    try:
        workstreams.update(w, {"hours": forms.hours_spec(request.form)})
    except ChatError as error:
        field = forms.error_field(error, ["timezone", "holidays"], HOURS_ALIASES)
        return _hours_page(
            _find(workstream_id),
            values,
            {field: error.message},
            error.status,
            preview={"open": None, "text": "Not saved: fix the highlighted field."},
        )
    return _hours_page(w, forms.hours_fields(json.loads(w.hours) if w.hours else None), notice="Operating hours saved.")


@bp.post("/workstreams/<workstream_id>/hours/preview", endpoint="preview_workstream_hours")
@admin_page
def preview_hours(workstream_id: str):
    """The editor's live preview of what is typed, before it is saved."""
    _find(workstream_id)
    try:
        return jsonify(hours_preview(forms.hours_spec(request.form)))
    except ChatError as error:
        field = forms.error_field(error, ["timezone", "holidays"], HOURS_ALIASES)
        return jsonify({"open": None, "text": error.message, "field": field})


# Automated messages ------------------------------------------------------------------------------


def _messages_rows(w: Workstream, form=None) -> list[dict]:
    own = automated_messages.settings(w)
    rows = []
    for kind in automated_messages.KINDS:
        never = w.mode == "persistent" and kind in automated_messages.QUEUE_KINDS
        texts = own.get(kind, {}).get("texts", {})
        rows.append(
            {
                "kind": kind,
                "label": KIND_LABELS[kind],
                "never": never,
                "enabled": bool(form.get(f"enabled_{kind}"))
                if form is not None
                else automated_messages.enabled(w, kind),
                "texts": {
                    lang: (form.get(f"text_{kind}_{lang}", "") if form is not None else texts.get(lang, ""))
                    for lang in automated_messages.LANGUAGES
                },
                "defaults": {
                    lang: automated_messages.DEFAULT_TEXTS[lang][kind] for lang in automated_messages.LANGUAGES
                },
                "placeholders": automated_messages.PLACEHOLDERS[kind],
            }
        )
    return rows


def _messages_page(
    w: Workstream, rows: list[dict], errors: dict | None = None, status: int = 200, notice: str | None = None
):
    samples = {**SAMPLE_VALUES, "QueueName": w.name}
    return page(
        "workstream_messages.html",
        status,
        workstream=w,
        tab="messages",
        rows=rows,
        languages={"en": "English", "fi": "Finnish"},
        samples=samples,
        errors=errors or {},
        notice=notice,
        section=SECTION,
    )


@bp.get("/workstreams/<workstream_id>/messages", endpoint="workstream_messages")
@admin_page
def messages_page(workstream_id: str):
    w = _find(workstream_id)
    return _messages_page(w, _messages_rows(w))


@bp.post("/workstreams/<workstream_id>/messages", endpoint="save_workstream_messages")
@admin_page
def save_messages(workstream_id: str):
    w = _find(workstream_id)
    form = request.form
    settings = {}
    for kind in automated_messages.KINDS:
        if w.mode == "persistent" and kind in automated_messages.QUEUE_KINDS:
            continue
        entry: dict = {"enabled": bool(form.get(f"enabled_{kind}"))}
        texts = {lang: form.get(f"text_{kind}_{lang}", "").strip() for lang in automated_messages.LANGUAGES}
        if any(texts.values()):
            entry["texts"] = {lang: text for lang, text in texts.items() if text}
        settings[kind] = entry
    try:
        workstreams.update(w, {"automated_messages": settings})
    except ChatError as error:
        field = "_form"
        for kind in automated_messages.KINDS:
            for lang in automated_messages.LANGUAGES:
                if f"automated_messages.{kind}.texts.{lang}" in error.message:
                    field = f"text_{kind}_{lang}"
        w = _find(workstream_id)
        return _messages_page(w, _messages_rows(w, form), {field: error.message}, error.status)
    return _messages_page(w, _messages_rows(w), notice="Automated messages saved.")


# Appearance --------------------------------------------------------------------------------------


def _appearance_values(w: Workstream) -> dict:
    look = appearance.for_widget(w)
    values = {"accent": look["accent"], "position": look["position"]}
    for lang in appearance.LANGUAGES:
        for field in appearance.TEXT_FIELDS:
            values[f"{field}_{lang}"] = look["texts"].get(lang, {}).get(field, "")
    return values


def _appearance_page(
    w: Workstream, values: dict, errors: dict | None = None, status: int = 200, notice: str | None = None
):
    accent = (values.get("accent") or appearance.DEFAULT_ACCENT).strip().lower()
    text, ratio = appearance.text_colour(accent) if appearance.is_colour(accent) else ("", 0.0)
    return page(
        "workstream_appearance.html",
        status,
        workstream=w,
        tab="appearance",
        values=values,
        text_colour=text,
        ratio=ratio,
        languages={"en": "English", "fi": "Finnish"},
        minimum=appearance.MIN_CONTRAST,
        errors=errors or {},
        notice=notice,
        section=SECTION,
    )


@bp.get("/workstreams/<workstream_id>/appearance", endpoint="workstream_appearance")
@admin_page
def appearance_page(workstream_id: str):
    w = _find(workstream_id)
    return _appearance_page(w, _appearance_values(w))


@bp.post("/workstreams/<workstream_id>/appearance", endpoint="save_workstream_appearance")
@admin_page
def save_appearance(workstream_id: str):
    w = _find(workstream_id)
    form = request.form
    look = {
        "accent": forms.text(form.get("accent")),
        "position": form.get("position") or "right",
        "texts": {
            lang: {field: form.get(f"{field}_{lang}", "") for field in appearance.TEXT_FIELDS}
            for lang in appearance.LANGUAGES
        },
    }
    try:
        workstreams.update(w, {"appearance": look})
    except ChatError as error:
        field = "_form"
        if "accent" in error.message:
            field = "accent"
        elif "position" in error.message:
            field = "position"
        for lang in appearance.LANGUAGES:
            for name in appearance.TEXT_FIELDS:
                if f"texts.{lang}.{name}" in error.message:
                    field = f"{name}_{lang}"
        return _appearance_page(_find(workstream_id), dict(form), {field: error.message}, error.status)
    return _appearance_page(
        w, _appearance_values(w), notice="Appearance saved. The widget shows it from its next load."
    )


# Embed -------------------------------------------------------------------------------------------


@bp.get("/workstreams/<workstream_id>/embed", endpoint="workstream_embed")
@admin_page
def embed_page(workstream_id: str):
    w = _find(workstream_id)
    asked = request.args.get("origin")
    check = None
    if asked is not None:
        try:
            origin = workstreams.origin(asked.strip())
            check = {"origin": origin, "allowed": w.allows_origin(origin), "error": None}
        except ChatError as error:
            check = {"origin": asked, "allowed": False, "error": error.message}
    server = server_url()
    return page(
        "workstream_embed.html",
        workstream=w,
        tab="embed",
        snippet=w.embed_snippet(server),
        server=server,
        check=check,
        section=SECTION,
    )
