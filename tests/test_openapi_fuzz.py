"""Schemathesis against a live server (gunicorn, as `make run` serves) with the document it serves at
/api/openapi.json: requests generated from the documented schemas, valid and invalid, for every
operation of the widget, console, admin and server APIs, each with its credentials. Every answer must be
no server error, with a documented status, content type and body.

A seeded world gives the requests something to act on: a persistent workstream (every `workstream_id`
is its id), customers with conversations in several states, an admin signed in to the console and an
API key. The fuzzing may demote that admin, reset their password, revoke the key or move the workstream
to another authentication setting: after a 401 or 403 the world's credentials are put back, so that
the later requests still reach past authentication."""

import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

import jwt
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import agents, api_keys, auth_settings
from app.extensions import db
from app.models import Agent, ApiKey, Workstream
from app.openapi import document
from tests.support import ChatServer, console_cookie, migrated_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Sized so the whole run takes a minute or two on a busy two-core machine.
EXAMPLES_PER_OPERATION = 10
SEED = 20260501
WORKSTREAM_ID = "fuzzed-workstream"
ADMIN_PASSWORD = "fuzzing admin password"
# The fuzzing posts far more than a person would: the rate limits have their own tests.
UNLIMITED = {
    name: "1000000/minute"
    for name in (
        "WIDGET_REQUESTS_PER_ADDRESS",
        "VISITOR_TOKENS_PER_ADDRESS",
        "MESSAGES_PER_CUSTOMER",
        "CONVERSATIONS_PER_CUSTOMER",
        "LOGIN_FAILURES_PER_ACCOUNT",
        "LOGIN_FAILURES_PER_ADDRESS",
    )
}


@dataclass
class World:
    server: ChatServer
    app: object
    workstream_id: str
    auth_setting_id: int
    admin_id: int
    key_id: int
    api_key: str
    customer_token: str
    cookie: str = ""
    csrf: str = ""
    statuses: Counter = field(default_factory=Counter)

    def sign_in(self) -> None:
        with self.app.app_context():
            email = db.session.get(Agent, self.admin_id).email
        self.cookie = console_cookie(self.server.url, email, ADMIN_PASSWORD)
        page = requests.get(self.server.url + "/console/", headers={"Cookie": self.cookie}, timeout=30).text
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    def headers_for(self, operation) -> dict[str, str]:
        headers = {}
        for requirement in operation.definition.raw.get("security", []):
            for scheme in requirement:
                if scheme == "customerToken":
                    headers["Authorization"] = f"Bearer {self.customer_token}"
                elif scheme == "apiKey":
                    headers["Authorization"] = f"Bearer {self.api_key}"
                elif scheme == "consoleSession":
                    headers["Cookie"] = self.cookie
                elif scheme == "csrfToken":
                    headers["X-CSRFToken"] = self.csrf
        return headers

    def heal(self) -> None:
        """Put back what the fuzzing may have taken from the world's credentials."""
        with self.app.app_context():
            admin = db.session.get(Agent, self.admin_id)
            admin.role, admin.disabled_at = "admin", None
            db.session.get(Workstream, self.workstream_id).auth_setting_id = self.auth_setting_id
            db.session.get(ApiKey, self.key_id).revoked_at = None
            db.session.commit()
            me = requests.get(self.server.url + "/console/api/me", headers={"Cookie": self.cookie}, timeout=30)
            if me.status_code == 401:
                agents.set_password(admin, ADMIN_PASSWORD)
        if me.status_code == 401:
            self.sign_in()


def _start_conversations(world: World, token) -> None:
    """The fuzzed customer's conversations 1 (ended by the admin, to be rated) and 2 (the admin's, active),
    another customer's 3 (in the queue), and a customer without any (customer 1, whom the admin API may
    erase)."""
    url = world.server.url
    widget = f"{url}/api/widget/workstreams/{world.workstream_id}"
    console = {"Cookie": world.cookie, "X-CSRFToken": world.csrf}

    def send(who: str, text: str) -> int:
        sent = requests.post(
            widget + "/messages",
            headers={"Authorization": f"Bearer {who}"},
            json={"client_id": text, "body": text},
            timeout=30,
        )
        assert sent.status_code == 201, sent.text
        return sent.json()["message"]["conversation_id"]

    def step(conversation_id: int, action: str, **body) -> None:
        done = requests.post(
            f"{url}/console/api/conversations/{conversation_id}/{action}", headers=console, json=body, timeout=30
        )
        assert done.status_code in (200, 201), done.text

    first = requests.get(
        widget + "/conversations", headers={"Authorization": f"Bearer {token('erasable')}"}, timeout=30
    )
    assert first.status_code == 200, first.text
    for text, end in (("Hello", True), ("Hello again", False)):
        conversation_id = send(world.customer_token, text)
        step(conversation_id, "take")
        step(conversation_id, "messages", client_id=f"a-{conversation_id}", body="How can I help?")
        if end:
            step(conversation_id, "end")
    send(token("queued"), "Anyone there?")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    instance = tmp_path_factory.mktemp("fuzzed")
    app = migrated_app(instance)
    secret = secrets.token_urlsafe(32)
    with app.app_context():
        setting = auth_settings.create("Fuzzed site", hs256_secret=secret)
        db.session.add(
            Workstream(
                id=WORKSTREAM_ID,
                name="Support",
                mode="persistent",
                distribution="pick",
                auth_setting=setting,
                allowed_origins="",
            )
        )
        db.session.commit()
        admin, _ = agents.add_agent("root@example.com", "Root", "admin", ADMIN_PASSWORD)
        agents.add_agent("ada@example.com", "Ada", "agent", None)
        key, api_key = api_keys.create({"name": "fuzzing", "workstream_ids": [WORKSTREAM_ID]})
        setting_id, admin_id, key_id = setting.id, admin.id, key.id

    def token(sub: str, name: str | None = None) -> str:
        # HS256 with the setting's secret: the fuzzing may add and retire keys, but cannot drop the secret.
        now = int(time.time())
        return jwt.encode({"sub": sub, "name": name, "iat": now, "exp": now + 3 * 3600}, secret, algorithm="HS256")

    server = ChatServer(instance, env=UNLIMITED).start()
    found = World(server, app, WORKSTREAM_ID, setting_id, admin_id, key_id, api_key, token("fuzzed", "Fuzzy"))
    try:
        served = requests.get(server.url + "/api/openapi.json", timeout=30)
        assert served.json() == document(), "the fuzzing uses the document the server serves"
        found.sign_in()
        _start_conversations(found, token)
        yield found
    finally:
        server.stop()
        with app.app_context():
            db.engine.dispose()


schema = schemathesis.openapi.from_dict(
    document(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "mode": "all", "deterministic": True},
            "parameters": {"path.workstream_id": WORKSTREAM_ID, "query.workstream": WORKSTREAM_ID},
            "request-timeout": 30,
            # The coverage phase tries every documented boundary of every parameter and field with valid
            # values; invalid ones come from the fuzzing phase here and from tests/test_bad_input.py, which
            # throws generated bad input at every route. Every undocumented method on every path would be
            # a thousand 405s: two make the point.
            "phases": {"coverage": {"generation": {"mode": "positive"}, "unexpected-methods": ["delete", "trace"]}},
            "operations": [
                {
                    # The coverage phase tries each boundary of each field: hundreds of requests for the
                    # workstream settings, and a password hash for every agent made. Fuzzing alone there.
                    "include-operation-id": ["adminCreateWorkstream", "adminUpdateWorkstream", "adminCreateAgent"],
                    "phases": {"coverage": {"enabled": False}},
                }
            ],
        }
    ),
)


@schema.parametrize()
def test_every_operation_answers_as_documented(case, world):
    response = case.call(base_url=world.server.url, headers=world.headers_for(case.operation))
    if case.method.upper() == case.operation.method.upper() and case.operation.definition.raw.get("security"):
        world.statuses[(case.operation.label, response.status_code)] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    finally:
        if response.status_code in (401, 403):
            world.heal()


def test_every_operation_got_past_authentication(world):
    """The fuzzing is only worth something if its requests reach the operations: each that needs
    credentials got at least one answer that is not a refusal of them."""
    if not world.statuses:
        pytest.skip("runs after the fuzzing, in the same module")
    secured = {
        f"{method.upper()} {path}"
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and operation.get("security")
    }
    assert {label for label, _ in world.statuses} == secured
    reached = {label for (label, status), _ in world.statuses.items() if status not in (401, 403)}
    assert sorted(secured - reached) == []
