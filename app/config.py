"""Settings, read from the environment in one place, with defaults that run locally."""

import os
import secrets
from pathlib import Path

from . import mail

MAX_MESSAGE_CHARS = 4000


def _secret_key(instance: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def from_environment(instance: Path) -> dict:
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'chat.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    return {
        "SECRET_KEY": _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "REDIS_CHANNEL_PREFIX": os.environ.get("REDIS_CHANNEL_PREFIX") or None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": os.environ.get("SESSION_COOKIE_SECURE", "") == "1",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 256 * 1024,
        "SCHEDULER_INTERVAL": float(os.environ.get("SCHEDULER_INTERVAL", "5")),
        # Queued live customers hear of a new position at most this often.
        "QUEUE_UPDATE_SECONDS": float(os.environ.get("QUEUE_UPDATE_SECONDS", "10")),
        # Per client address and live workstream; see rate_limits.py.
        "VISITOR_TOKENS_PER_10_MINUTES": int(os.environ.get("VISITOR_TOKENS_PER_10_MINUTES", "30")),
        # Email (mail.py, notifications.py): no SMTP_URL, no emails.
        "SMTP_URL": mail.check_url(os.environ.get("SMTP_URL")),
        "SMTP_FROM": os.environ.get("SMTP_FROM") or "Persistent Chat <chat@localhost>",
        # Links in emails (unsubscribe, the console) point here.
        "PUBLIC_URL": (
            os.environ.get("PUBLIC_URL")
            or f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
        ).rstrip("/"),
        # A webhook receiver that has not answered in this time counts as a failed attempt.
        "WEBHOOK_TIMEOUT_SECONDS": float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "10")),
        "PRESENCE_GRACE_SECONDS": int(os.environ.get("PRESENCE_GRACE_SECONDS", "60")),
        # No permessage-deflate (see realtime.py); ping every 25 s; frames capped.
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25, "max_message_size": 64 * 1024},
    }
