"""What the tests share: a seeded world, customer tokens, and a real server in a subprocess."""

import atexit
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from http.cookiejar import CookieJar
from pathlib import Path
from unittest import mock

import jwt
import pytest
import redis
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from flask import Flask
from flask_migrate import upgrade
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.pool import NullPool
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash

from app import ROOT, auth_settings, clock, create_app, passwords
from app.agents import add_agent
from app.extensions import db
from app.models import Workstream

HOST_ORIGIN = "http://host.example"


KID = "site-key-1"


def rsa_key_pair() -> tuple[str, str]:
    """(private PEM, public PEM), as a site makes with `openssl genrsa`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode(),
        private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
    )


@dataclass
class World:
    workstream_id: str
    auth_setting_id: int
    secret: str
    private_key: str
    agents: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (email, password)

    def token(self, sub: str, name: str | None = None, lifetime: int = 600, alg: str = "RS256", **claims) -> str:
        """A customer token as the site's backend signs it: RS256 with the registered key by default."""
        now = int(time.time())
        payload = {"sub": sub, "iat": now, "exp": now + lifetime, **claims}
        if name:
            payload["name"] = name
        if alg == "HS256":
            return jwt.encode(payload, self.secret, algorithm="HS256")
        return jwt.encode(payload, self._signing_key, algorithm="RS256", headers={"kid": KID})

    @cached_property
    def _signing_key(self):
        # Loading a PEM checks the RSA key, a tenth of a second: once per world, not once per token.
        return load_pem_private_key(self.private_key.encode(), None)


# TEST_DATABASE_URL=postgresql+psycopg://user@host/db runs the tests on PostgreSQL: that server gets a
# fresh database per instance folder (its own database is only used to reach the server).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or None
# TEST_REDIS_URL=redis://host:port enables the Redis hub's tests and, with PostgreSQL, the scale-out tests.
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
# For the tests of a scaled-out deployment: several server processes on PostgreSQL and Redis.
needs_scale_out = pytest.mark.skipif(
    not (TEST_DATABASE_URL and TEST_REDIS_URL),
    reason="scale-out needs PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL "
    "(make test does when both answer on 127.0.0.1)",
)


def fail_unmarked_database_skip(item: pytest.Item, report: pytest.TestReport) -> None:
    """A test skipped for want of PostgreSQL or Redis runs only in `make test`'s second run, which takes
    the tests marked `database`: unmarked, it would run nowhere, so it fails and says so."""
    if not report.skipped or item.get_closest_marker("database") or not isinstance(report.longrepr, tuple):
        return
    reason = report.longrepr[2]
    if "TEST_DATABASE_URL" in reason or "TEST_REDIS_URL" in reason:
        report.outcome = "failed"
        report.longrepr = (
            f"needs PostgreSQL or Redis but is not marked `database`, so make test runs it nowhere: {reason}"
        )


_databases: dict[Path, str] = {}
_created: set[str] = set()


def _admin_engine():
    return create_engine(
        make_url(TEST_DATABASE_URL).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def create_database(template: str | None = None) -> str:
    """A new, empty PostgreSQL database (or a copy of `template`'s), dropped when the tests end."""
    name = f"pc_test_{os.getpid()}_{secrets.token_hex(4)}"
    engine = _admin_engine()
    with engine.connect() as connection:
        copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    engine.dispose()
    _created.add(name)
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


# Databases are made and dropped beside the tests, in these threads. DROP DATABASE waits for a checkpoint
# of the whole PostgreSQL server (seconds while others write to it), and drops that wait together share
# one: a test hands its database over and goes on. A test's copy of the template was made while the test
# before it ran: CREATE DATABASE takes a tenth of a second alone and up to a second under the suite's
# load, most of it PostgreSQL's own work (copying and syncing its catalogs), which overlaps the test's.
_background = ThreadPoolExecutor(max_workers=8, thread_name_prefix="databases")
_dropping: list[Future] = []
_copies: dict[str, Future] = {}


def _copy_of(template: str) -> str:
    """A fresh copy of the PostgreSQL database `template`; the next one is started meanwhile."""
    name = make_url(template).database
    ahead = _copies.pop(name, None)
    url = ahead.result() if ahead is not None else create_database(template=template)
    _copies[name] = _background.submit(create_database, template)
    return url


def copy_instance(template: Path, instance: Path) -> None:
    """Make `instance` a copy of the instance folder `template`, its database included."""
    shutil.copytree(template, instance, dirs_exist_ok=True)
    if TEST_DATABASE_URL:
        use_database(instance, _copy_of(database_url(template)))


def drop_database(url: str) -> None:
    _dropping.append(_background.submit(drop_databases, [make_url(url).database]))


def drop_leftover_databases() -> None:
    """Wait for the copies and drops under way, then drop together every other database the tests made
    (the end of a pytest session; atexit catches the rest, one by one)."""
    for ahead in [*_copies.values(), *_dropping]:
        with suppress(Exception):
            ahead.result()
    _copies.clear()
    _dropping.clear()
    for future in [_background.submit(drop_databases, [name]) for name in list(_created)]:
        future.result()


@atexit.register
def _drop_leftovers() -> None:
    if _created:
        drop_databases(list(_created))


def drop_databases(names: list[str]) -> None:
    engine = _admin_engine()
    with engine.connect() as connection:
        for name in names:
            # FORCE: a server subprocess killed mid-test may leave a connection behind.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            _created.discard(name)
    engine.dispose()


def database_url(instance: Path) -> str | None:
    """The database an instance folder's app and servers use: None means SQLite inside the folder."""
    if TEST_DATABASE_URL is None:
        return None
    key = Path(instance).resolve()
    if key not in _databases:
        _databases[key] = create_database()
    return _databases[key]


def use_database(instance: Path, url: str) -> None:
    _databases[Path(instance).resolve()] = url


@contextmanager
def statements() -> Iterator[list[str]]:
    """The SQL the current app's engine runs inside the block."""
    executed: list[str] = []

    def count(_conn, _cursor, statement, _parameters, _context, _executemany):
        executed.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield executed
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _builders_once() -> None:
    """Each test builds its own app, and werkzeug compiles Python source for every route's URL builder
    when a rule is added: most of create_app's time (80 ms here), for code that is the same in every app.
    The tests' processes compile each builder once. What a builder does depends only on what the key
    holds (the rule, its parsed parts, its defaults and their converters); `self` is an argument."""
    compile_builder = Rule._compile_builder
    builders: dict = {}

    def cached(self: Rule, append_unknown: bool = True):
        defaults = sorted(
            (name, repr(value), type(self._converters.get(name))) for name, value in (self.defaults or {}).items()
        )
        key = (self.rule, tuple(self._trace), tuple(defaults), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    Rule._compile_builder = cached


_builders_once()


def app_for(instance: Path, **config) -> Flask:
    url = database_url(instance)
    return create_app({"INSTANCE_PATH": instance, **({"SQLALCHEMY_DATABASE_URI": url} if url else {}), **config})


def migrated_app(instance: Path, revision: str = "head", **config) -> Flask:
    app = app_for(instance, **config)
    with app.app_context():
        upgrade(revision=revision)
    return app


# The product hashes passwords with scrypt at a cost of a sixth of a CPU-second, and the tests sign in
# hundreds of times. The agents of the tests' shared worlds get hashes of a small scrypt cost instead:
# checking reads the cost from the hash, so signing in still runs the product's code. Tests of hashing
# itself (its cost, its timing) make their agents at the product's cost.
QUICK_HASH = "scrypt:1024:8:1"


@contextmanager
def quick_password_hashes() -> Iterator[None]:
    with mock.patch.object(passwords, "hash_password", lambda password: generate_password_hash(password, QUICK_HASH)):
        yield


def seed(app: Flask, origins: list[str], agents: dict[str, str] | None = None, domain: str = "example.com") -> World:
    """An authentication setting (an RS256 key and an HS256 secret), one persistent workstream embedded
    by `origins`, and agents {key: name} with the email key@domain."""
    private_key, public_key = rsa_key_pair()
    with app.app_context():
        setting = auth_settings.create(
            "Test site", hs256_secret=secrets.token_urlsafe(32), keys=[{"kid": KID, "public_key": public_key}]
        )
        workstream = Workstream(
            name="Support", mode="persistent", auth_setting=setting, allowed_origins=" ".join(origins)
        )
        db.session.add(workstream)
        db.session.commit()
        world = World(workstream.id, setting.id, setting.hs256_secret, private_key)
        for key, name in (agents or {}).items():
            email = f"{key}@{domain}"
            _agent, password = add_agent(email, name, "agent", None)
            world.agents[key] = (email, password)
        return world


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChatServer:
    """The real server (gunicorn, gevent worker) on a free port, as `make run` starts it."""

    def __init__(self, instance: Path, env: dict | None = None):
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.log = instance / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ChatServer":
        self.launch()
        return self.ready()

    def launch(self) -> None:
        env = {
            **os.environ,
            "PERSISTENT_CHAT_INSTANCE": str(self.instance),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **({"DATABASE_URL": url} if (url := database_url(self.instance)) else {}),
            **self.env,
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "serve"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> "ChatServer":
        # Two processes import the app before the first answer: a second or two on a quiet machine, many
        # more when others share it; the bound is for a server that will never answer.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/widget.js", timeout=5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    @staticmethod
    def start_together(*servers: "ChatServer") -> tuple["ChatServer", ...]:
        """Several servers started side by side: each spends seconds importing the app before it answers."""
        for server in servers:
            server.launch()
        try:
            return tuple(server.ready() for server in servers)
        except RuntimeError:
            for server in servers:
                server.stop()
            raise

    def move_clock(self, seconds: float) -> None:
        """Let time pass for the server (needs PERSISTENT_CHAT_CLOCK_OFFSET_FILE in its env)."""
        path = Path(self.env["PERSISTENT_CHAT_CLOCK_OFFSET_FILE"])
        offset = float(path.read_text() or 0) if path.exists() else 0.0
        path.write_text(str(offset + seconds))

    def restart(self) -> None:
        """Stop and start again on the same port and database, as a deploy or crash would."""
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def console_cookie(server_url: str, email: str, password: str) -> str:
    """Sign in to the console as a browser does (CSRF token from the form) and return the Cookie header."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(server_url + "/console/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
    opener.open(server_url + "/console/login", data=form)
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def npm_package(package: str, marker: str) -> Path:
    """An npm package installed once into .venv/node-tools (not committed); returns that prefix. Without
    npm, or offline, the calling test is skipped, except in CI, where it fails."""
    prefix = ROOT / ".venv" / "node-tools"
    prefix.mkdir(parents=True, exist_ok=True)
    # Test processes run side by side: one installs while the others wait, rather than see half a package.
    with open(prefix / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (prefix / "node_modules" / marker).exists():
            return prefix
        if shutil.which("npm") is None:
            pytest.skip(f"npm is not installed: the checks that need {package} are skipped")
        done = subprocess.run(
            ["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", package],
            capture_output=True,
            text=True,
            timeout=300,
        )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"npm install {package} failed: {done.stderr[-1000:]}")
        pytest.skip(f"npm could not install {package} (offline?)")
    return prefix


class Clock:
    """The application's clock, set by the test: starts on a Monday morning and moves when told."""

    START = datetime(2026, 11, 23, 10, 0, 0)

    def __init__(self):
        self.now = self.START
        clock.set_source(lambda: self.now)

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class RedisServer:
    """A private redis-server on a free port, which a fault test stops, starts again (same port),
    freezes (SIGSTOP) and thaws; skipped when redis-server is not installed."""

    def __init__(self, directory: Path):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed: the Redis fault tests are skipped")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [*args, "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def channels(self, prefix: str) -> set[str]:
        """What this Redis knows is being listened to under `prefix`."""
        client = redis.Redis.from_url(self.url)
        try:
            return {c.decode().removeprefix(prefix) for c in client.pubsub_channels(prefix + "*")}
        finally:
            client.close()
