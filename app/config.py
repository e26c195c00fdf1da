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
        instance.mkdir(parents=True, exist_ok=True, mode=0o700)
        # O_EXCL: two processes starting together must not write two different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _private_database(path: Path) -> None:
    """The SQLite file holds password hashes and the sites' HS256 secrets: owner-only, made so before
    SQLite first opens it (its -wal and -shm files copy the database file's mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


def _pool(database_url: str) -> dict:
    """PostgreSQL connections per server process. Under gevent every socket waiting on the database
    holds one for the statement or transaction, never longer (realtime.py); customers' messages share
    one (posting.py). Past DATABASE_POOL_TIMEOUT a wait is answered `database_busy`, and the socket
    stays open (errors.Busy). SQLite needs none of this: its statements never yield."""
    if database_url.startswith("sqlite"):
        return {}
    env = os.environ.get
    return {
        "pool_size": int(env("DATABASE_POOL_SIZE", "20")),
        "max_overflow": int(env("DATABASE_POOL_OVERFLOW", "10")),
        "pool_timeout": float(env("DATABASE_POOL_TIMEOUT", "5")),
    }


def from_environment(instance: Path) -> dict:
    if not os.environ.get("DATABASE_URL"):
        _private_database(instance / "chat.db")
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'chat.db'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    return {
        "SECRET_KEY": _secret_key(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _pool(database_url),
        # admission.hello_turn: on PostgreSQL, hellos take at most the pool's steady size, and the
        # overflow stays for everything else (sends, the console, the timers).
        "HELLOS_AT_ONCE": int(os.environ.get("HELLOS_AT_ONCE", _pool(database_url).get("pool_size", 0))),
        "HELLO_QUEUE_SECONDS": float(os.environ.get("HELLO_QUEUE_SECONDS", "30")),
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
        # The console lists this many of the queue's conversations; the rest it counts ("and 150 more").
        "CONSOLE_QUEUE_WINDOW": int(os.environ.get("CONSOLE_QUEUE_WINDOW", "50")),
        # Attachments: storage (see storage.py), a malware scanner, how long a file's link works.
        "ATTACHMENTS_URL": os.environ.get("ATTACHMENTS_URL") or None,
        "ATTACHMENT_SCAN_COMMAND": os.environ.get("ATTACHMENT_SCAN_COMMAND") or None,
        "ATTACHMENT_URL_SECONDS": int(os.environ.get("ATTACHMENT_URL_SECONDS", str(24 * 3600))),
        # How long a request waits for SQLite's write lock held by another process (see sqlite.py).
        "SQLITE_LOCK_WAIT_SECONDS": float(os.environ.get("SQLITE_LOCK_WAIT_SECONDS", "10")),
        # What a socket's queue of live events may hold before it is told to resync (see events.py).
        "SOCKET_QUEUE_LIMIT_BYTES": int(os.environ.get("SOCKET_QUEUE_LIMIT_BYTES", str(1024 * 1024))),
        # The demo site (/demo/, which signs tokens for its made-up customers) only for `serve --demo`.
        "DEMO": os.environ.get("PERSISTENT_CHAT_DEMO") == "1",
        # No permessage-deflate (see realtime.py); ping every 25 s; frames capped.
        "SOCK_SERVER_OPTIONS": {"ping_interval": 25, "max_message_size": 64 * 1024},
        **_limits(),
    }


def _limits() -> dict:
    """Admission and rate limits (README, "Limits"). Rates are written as Flask-Limiter writes them,
    e.g. "20/minute" or "30 per 10 seconds"; several separated by ";" all apply."""
    env = os.environ.get
    # `persistent-chat serve` passes its --worker-connections: sockets that have not said hello may
    # take only a tenth of them, so HTTP and signed-in sockets always find room.
    worker_connections = int(env("PERSISTENT_CHAT_WORKER_CONNECTIONS", "10000"))
    sockets_before_hello = int(env("SOCKETS_BEFORE_HELLO", str(max(1, worker_connections // 10))))
    return {
        # Werkzeug's ProxyFix: how many proxies in front set X-Forwarded-For/-Proto (0: none, trust no header).
        "TRUSTED_PROXIES": int(env("TRUSTED_PROXIES", "0")),
        "RATELIMIT_STORAGE_URI": env("REDIS_URL") or "memory://",
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # A frozen Redis costs one count a quarter of a second, then the process counts alone for a while
        # (rates.py); a Redis that answers does so in well under a millisecond.
        "RATELIMIT_STORAGE_OPTIONS": {"socket_timeout": 0.25, "socket_connect_timeout": 0.25},
        "HELLO_TIMEOUT_SECONDS": float(env("HELLO_TIMEOUT_SECONDS", "10")),
        "SOCKETS_BEFORE_HELLO": sockets_before_hello,
        # Handshakes past SOCKETS_BEFORE_HELLO wait in line for a place, unanswered, rather than being
        # refused at once: a herd after a restart would otherwise spend the CPU its welcomes need on
        # refusing its own retries. Two more tenths of the connections at most, and for a bounded time.
        "HANDSHAKES_IN_LINE": int(env("HANDSHAKES_IN_LINE", str(2 * sockets_before_hello))),
        "HANDSHAKE_LINE_SECONDS": float(env("HANDSHAKE_LINE_SECONDS", "10")),
        "SOCKETS_BEFORE_HELLO_PER_ADDRESS": int(env("SOCKETS_BEFORE_HELLO_PER_ADDRESS", "10")),
        "SOCKETS_PER_ADDRESS": int(env("SOCKETS_PER_ADDRESS", "50")),
        "SOCKETS_PER_CUSTOMER": int(env("SOCKETS_PER_CUSTOMER", "10")),
        "HANDSHAKES_PER_ADDRESS": env("HANDSHAKES_PER_ADDRESS", "120/minute"),
        "MESSAGES_PER_CUSTOMER": env("MESSAGES_PER_CUSTOMER", "20/minute"),
        "CONVERSATIONS_PER_CUSTOMER": env("CONVERSATIONS_PER_CUSTOMER", "10/hour"),
        "FRAMES_PER_SOCKET": env("FRAMES_PER_SOCKET", "30 per 10 seconds"),
        "TYPING_PER_CUSTOMER": env("TYPING_PER_CUSTOMER", "1 per 2 seconds"),
        "REFUSALS_PER_SOCKET": env("REFUSALS_PER_SOCKET", "10/minute"),
        "WIDGET_REQUESTS_PER_ADDRESS": env("WIDGET_REQUESTS_PER_ADDRESS", "600/minute"),
        "VISITOR_TOKENS_PER_ADDRESS": env("VISITOR_TOKENS_PER_ADDRESS", "30 per 10 minutes"),
        "LOGIN_FAILURES_PER_ACCOUNT": env("LOGIN_FAILURES_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_FAILURES_PER_ADDRESS": env("LOGIN_FAILURES_PER_ADDRESS", "50 per 15 minutes"),
    }
