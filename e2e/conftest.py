"""End-to-end fixtures: the real server, a customer's website on another origin, and Chromium."""

import contextlib
import html
import json
import os
import re
import shutil
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from sqlalchemy import func, update

from app import clock
from app.extensions import db
from app.models import Agent, Conversation
from tests.support import (
    KID,
    ChatServer,
    World,
    drop_leftover_databases,
    fail_unmarked_database_skip,
    free_port,
    migrated_app,
    quick_password_hashes,
    rsa_key_pair,
    seed,
)

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
expect.set_options(timeout=5000)


# Browser tests run on SQLite; a module that needs PostgreSQL or Redis says `pytestmark =
# pytest.mark.database` and runs again in make test's second run (see tests/conftest.py).
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    fail_unmarked_database_skip(item, outcome.get_result())


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish():
    drop_leftover_databases()


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium), or set CHROMIUM.")
    return path


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class HostSite:
    """A customer's website: its own origin, its own backend signing tokens for its signed-in customer
    (chosen with ?customer=), and the widget embedded with one script tag."""

    def __init__(self, chat_url: str, world: World | None = None, port: int | None = None):
        self.chat_url = chat_url
        self.world = world
        self.port = port or free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.pages: dict[str, str] = {}
        self.tokens_issued = 0
        # Set to 503 to take the site's token backend down (its pages stay up); asks meanwhile are counted.
        self.token_status = 200
        self.tokens_refused = 0
        self.context: dict[str, dict] = {}  # sub -> lwicontexts the site passes
        self.claims: dict[str, dict] = {}  # sub -> further claims the site signs, e.g. an email address
        # How the site embeds the chat; tests change these before loading a page.
        self.head = ""  # extra markup in <head>: the command-queue stub, hostile styles
        self.headers: dict[str, str] = {}  # extra headers on every page, e.g. a Content-Security-Policy
        self.copies = 1  # how many times the page includes the widget's script tag
        self.attributes = ""  # extra attributes on that tag, e.g. data-sound="on"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                status = 200
                if url.path == "/token" and site.token_status != 200:
                    site.tokens_refused += 1
                    status, body, kind = site.token_status, b"<h1>Service Unavailable</h1>", "text/html"
                elif url.path == "/token":
                    body, kind = site.sign(query).encode(), "text/plain"
                elif url.path in site.pages:
                    body, kind = site.pages[url.path].encode(), "text/html"
                else:
                    page = site.page(
                        query.get("customer", "alice"), query.get("style", "callback"), query.get("lang", "en")
                    )
                    body, kind = page.encode(), "text/html"
                self.send_response(status)
                if kind == "text/html":
                    for name, value in site.headers.items():
                        self.send_header(name, value)
                self.send_header("Content-Type", kind + "; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                # A page closed mid-load is no error: bench/launcher.py closes pages once it has timed them.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, query: dict) -> str:
        """The site's backend signing a token for its signed-in customer."""
        self.tokens_issued += 1
        sub = query["customer"]
        claims = {"lwicontexts": json.dumps(self.context[sub])} if sub in self.context else {}
        claims.update(self.claims.get(sub, {}))
        token = self.world.token(sub, query.get("name"), lifetime=int(query.get("lifetime", 600)), **claims)
        if query.get("key") == "wrong":
            payload = jwt.decode(token, options={"verify_signature": False})
            token = jwt.encode(payload, rsa_key_pair()[0], algorithm="RS256", headers={"kid": KID})
        return token

    # How the page's token function answers: through the callback, with a Promise, or never.
    TOKEN_FUNCTIONS = {
        "callback": "window.getChatToken = function (callback) { fetchToken().then(callback); };",
        "promise": "window.getChatToken = function () { return fetchToken(); };",
        "silent": "window.tokenAsks = 0; window.getChatToken = function () { window.tokenAsks += 1; };",
        # Throws, then rejects, then never answers, then works: each is retried without a click.
        "flaky": """window.tokenAsks = 0;
  window.getChatToken = function (callback) {
    window.tokenAsks += 1;
    if (window.tokenAsks === 1) throw new Error("the site's script broke");
    if (window.tokenAsks === 2) return Promise.reject(new Error("the site's backend said no"));
    if (window.tokenAsks === 3) return;
    fetchToken().then(callback);
  };""",
    }
    # Inline scripts carry this nonce, so a test's Content-Security-Policy can allow them without
    # 'unsafe-inline'.
    NONCE = "e2e-host-nonce"

    def page(self, customer: str, style: str = "callback", lang: str = "en") -> str:
        who = html.escape(customer)
        if style == "inline":
            # Rendered into the page by the site's backend: no request, so connect-src can stay strict.
            token = json.dumps(self.sign({"customer": customer}))
            token_function = f"window.getChatToken = function (callback) {{ callback({token}); }};"
        else:
            token_function = self.TOKEN_FUNCTIONS[style]
        widget_tag = (
            f'<script src="{self.chat_url}/widget.js" data-workstream="{self.world.workstream_id}"\n'
            f'        data-auth-function="getChatToken"{self.attributes} async></script>\n'
        )
        return f"""<!doctype html>
<html lang="{html.escape(lang)}"><head><meta charset="utf-8"><title>Shop</title>{self.head}</head>
<body data-customer="{who}">
<h1>Shop of {who}</h1>
<script nonce="{self.NONCE}">
  function fetchToken() {{
    // The page's own query (lifetime, key) goes along to its backend: tests steer the tokens with it.
    var query = new URLSearchParams(location.search);
    query.set("customer", document.body.dataset.customer);
    return fetch("/token?" + query).then(function (r) {{ return r.text(); }});
  }}
  {token_function}
</script>
{widget_tag * self.copies}{self.live_tag()}
</body></html>"""

    live_workstream_id: str | None = None

    def live_tag(self) -> str:
        """A second widget, for a live workstream: no token function, so its visitors are anonymous."""
        if not self.live_workstream_id:
            return ""
        return (
            f'<script src="{self.chat_url}/widget.js" data-workstream="{self.live_workstream_id}" '
            'data-position="left" async></script>'
        )

    def url(self, customer: str = "alice", **options) -> str:
        return f"{self.origin}/?" + urllib.parse.urlencode({"customer": customer, **options})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat_env() -> dict:
    """More environment for the server of `chat`: a test module overrides it (an SMTP server, say)."""
    return {}


# Its timers tick twice a second so that what time triggers shows up quickly. A jump of the clock by hours
# would otherwise count as hours without a console heartbeat, so the presence grace period covers the
# jumps tests make. Every browser of a module's tests speaks to the one server from 127.0.0.1: the
# per-address rates are for one client (tests/test_limits.py holds them to that), not for a whole module.
CHAT_ENV = {
    "SCHEDULER_INTERVAL": "0.5",
    "PRESENCE_GRACE_SECONDS": str(6 * 3600),
    "QUEUE_UPDATE_SECONDS": "1",
    "HANDSHAKES_PER_ADDRESS": "6000/minute",
    "WIDGET_REQUESTS_PER_ADDRESS": "60000/minute",
    "VISITOR_TOKENS_PER_ADDRESS": "3000 per 10 minutes",
    "LOGIN_FAILURES_PER_ADDRESS": "5000 per 15 minutes",
}


class ModuleServer:
    """The server a module's tests share, since starting one costs seconds. Each test gets a world of its
    own in it: an authentication setting (so its customers are new, whatever their sub), a workstream its
    host site may embed, and agents Ada and Bo. The world before it is retired first: its conversations
    closed (no email will be due for them) and its agents disabled, so no list shows them and nothing is
    routed to them; and the server's clock is set right again. A test that left the server stopped, or
    wants other settings (chat_env), gets a new server and database."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory):
        self.tmp_path_factory = tmp_path_factory
        self.server: ChatServer | None = None
        self.env: dict | None = None
        self.app = None
        self.worlds = 0

    def world(self, env: dict, origin: str) -> tuple[ChatServer, World]:
        if self.reusable(env):
            retire(self.app)
            Path(self.server.env["PERSISTENT_CHAT_CLOCK_OFFSET_FILE"]).unlink(missing_ok=True)
        else:
            self.stop()
            instance = self.tmp_path_factory.mktemp("chat")
            self.app, self.env = migrated_app(instance), env
            # The server's clock is moved by writing seconds to this file (see app/clock.py).
            clock_file = {"PERSISTENT_CHAT_CLOCK_OFFSET_FILE": str(instance / "clock_offset")}
            self.server = ChatServer(instance, env={**env, **clock_file}).start()
        self.worlds += 1
        with quick_password_hashes():
            world = seed(self.app, [origin], {"ada": "Ada", "bo": "Bo"}, domain=f"world{self.worlds}.example.com")
        return self.server, world

    def reusable(self, env: dict) -> bool:
        return self.server is not None and env == self.env and self.server.proc.poll() is None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            with self.app.app_context():
                db.engine.dispose()
            self.server = None


def retire(app) -> None:
    """The previous test's conversations closed and its agents disabled (and signed out), in one go."""
    with app.app_context():
        now = clock.now()
        db.session.execute(
            update(Conversation)
            .where(Conversation.status != "closed")
            .values(
                status="closed",
                ended_at=func.coalesce(Conversation.ended_at, now),
                offer_expires_at=None,
                notify_due_at=None,
            )
        )
        db.session.execute(
            update(Agent)
            .where(Agent.disabled_at.is_(None))
            .values(disabled_at=now, presence="offline", session_version=Agent.session_version + 1)
        )
        db.session.commit()
        db.session.remove()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    shared = ModuleServer(tmp_path_factory)
    yield shared
    shared.stop()


@pytest.fixture
def chat(module_server, chat_env):
    """A server with one persistent workstream embedded by one host site, and agents Ada and Bo; the
    module's tests share the server, each with a world of its own (see ModuleServer)."""
    host_port = free_port()
    server, world = module_server.world({**CHAT_ENV, **chat_env}, f"http://127.0.0.1:{host_port}")
    site = HostSite(server.url, world, host_port)
    yield server, site, world
    site.close()


@pytest.fixture
def contexts(browser: Browser):
    """New browser contexts: each one a separate device (no shared cookies or storage); options such as
    a phone's viewport go to Playwright's new_context."""
    opened: list[BrowserContext] = []

    def new(**options) -> BrowserContext:
        context = browser.new_context(**options)
        opened.append(context)
        return context

    yield new
    for context in opened:
        context.close()


class Widget:
    """The customer's side, driven through what is on screen (inside the widget's shadow root).
    `workstream_id` picks one widget on a page that embeds several; `lang` is the page's language."""

    LABELS = {
        "en": {"open": "Open chat", "chat": "Chat", "messages": "Messages", "message": "Message", "send": "Send"},
        "fi": {"open": "Avaa chat", "chat": "Chat", "messages": "Viestit", "message": "Viesti", "send": "Lähetä"},
    }

    def __init__(self, page: Page, workstream_id: str | None = None, lang: str = "en"):
        self.page = page
        self.labels = self.LABELS[lang]
        self.scope = page.locator(f'[data-persistent-chat="{workstream_id}"]') if workstream_id else page
        self.launcher = self.scope.locator(".pc-launcher")
        self.log = self.scope.get_by_role("log", name=self.labels["messages"])
        self.box = self.scope.get_by_role("textbox", name=self.labels["message"])

    def open(self) -> "Widget":
        launcher = self.scope.get_by_role("button", name=self.labels["open"])
        expect(launcher).to_be_visible()
        launcher.click()
        expect(self.scope.get_by_role("dialog", name=self.labels["chat"])).to_be_visible()
        return self

    def write(self, text: str) -> None:
        self.box.fill(text)
        self.scope.get_by_role("button", name=self.labels["send"], exact=True).click()
        # Acknowledged by the server: the message now carries its sequence number.
        expect(self.messages(sender="customer").filter(has_text=text).last).to_have_attribute(
            "data-seq", re.compile(r"^\d+$")
        )

    def messages(self, sender: str | None = None):
        selector = ".pc-msg" + (f'[data-sender="{sender}"]' if sender else "")
        return self.log.locator(selector)

    def bodies(self) -> list[str]:
        return self.log.locator(".pc-msg .pc-body").all_inner_texts()


class Console:
    """The agent's side, in its own browser context."""

    def __init__(self, page: Page, server: ChatServer):
        self.page = page
        self.server = server

    def sign_in(self, email: str, password: str) -> "Console":
        self.page.goto(self.server.url + "/console/")
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("heading", name="My conversations")).to_be_visible()
        return self

    def mine(self):
        return self.page.locator("#list-mine li")

    def open(self, text: str) -> None:
        """Open the conversation listed with `text` and wait until its history shows."""
        self.mine().filter(has_text=text).first.get_by_role("button").first.click()
        expect(self.log().locator(".msg").filter(has_text=text).first).to_be_visible()

    def reply(self, text: str) -> None:
        self.page.get_by_label("Reply").fill(text)
        self.page.locator("#conversation").get_by_role("button", name="Send").click()
        expect(self.log().locator(".msg").filter(has_text=text)).to_have_count(1)

    def log(self):
        return self.page.get_by_role("log", name="Conversation")


@pytest.fixture
def console(contexts, chat):
    server, _site, world = chat

    def sign_in(key: str = "ada") -> Console:
        email, password = world.agents[key]
        return Console(contexts().new_page(), server).sign_in(email, password)

    return sign_in


@pytest.fixture
def customer(contexts, chat):
    _server, site, _world = chat

    def open_as(sub: str = "alice", **options) -> Widget:
        page = contexts().new_page()
        page.goto(site.url(sub, **options))
        return Widget(page).open()

    return open_as


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
