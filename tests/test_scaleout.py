"""Two server processes sharing PostgreSQL and Redis, as a scaled-out deployment runs: the customer on one,
the agents on the other, and routing racing on both."""

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.cookiejar import CookieJar

import jwt
import pytest
import simple_websocket
from sqlalchemy import func, select, text, update

from app import ROOT, events, workstream_copies, workstreams
from app.extensions import db
from app.models import Agent, Conversation, ConversationEvent, Workstream
from app.timers import ADVISORY_LOCK_KEY
from tests.support import (
    HOST_ORIGIN,
    TEST_REDIS_URL,
    ChatServer,
    World,
    app_for,
    database_url,
    migrated_app,
    needs_scale_out,
    rsa_key_pair,
    seed,
    use_database,
)
from tests.test_sockets import Peer, widget

pytestmark = needs_scale_out
ROUTING_AGENTS = ("r1", "r2", "r3", "r4")


@dataclass
class Cluster:
    a: ChatServer
    b: ChatServer
    world: World
    app: object  # a Flask app on the shared database, for looking at what the servers wrote


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("server-a"), tmp_path_factory.mktemp("server-b")
    app = migrated_app(first)
    agents = {"ada": "Ada", "timer": "Timer", **{key: key.upper() for key in ROUTING_AGENTS}}
    world = seed(app, [HOST_ORIGIN], agents)
    use_database(second, database_url(first))
    # One secret for both: a console signed in on one process is signed in on the other, as behind a
    # load balancer.
    env = {"REDIS_URL": TEST_REDIS_URL, "SECRET_KEY": secrets.token_urlsafe(32), "SCHEDULER_INTERVAL": "0.5"}
    a, b = ChatServer.start_together(ChatServer(first, env), ChatServer(second, env))
    a.world = b.world = world
    yield Cluster(a, b, world, app)
    a.stop()
    b.stop()
    with app.app_context():
        db.engine.dispose()


class AgentSession:
    """An agent signed in to the console (on either process: they share the secret)."""

    def __init__(self, server: ChatServer, key: str):
        email, password = server.world.agents[key]
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        form = self.opener.open(server.url + "/console/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        data = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
        page = self.opener.open(server.url + "/console/login", data=data).read().decode()
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def post(self, server: ChatServer, path: str, payload: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{server.url}/console/api{path}",
            data=json.dumps(payload or {}).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf},
            method="POST",
        )
        with self.opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def socket(self, server: ChatServer) -> Peer:
        return Peer(
            server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": self.cookie()}
        )


def customer_writes(server: ChatServer, sub: str, body: str) -> dict:
    """A customer's message over the widget's HTTP API (the widget's fallback to its socket)."""
    request = urllib.request.Request(
        f"{server.url}/api/widget/workstreams/{server.world.workstream_id}/messages",
        data=json.dumps({"client_id": secrets.token_hex(8), "body": body}).encode(),
        headers={
            "Authorization": f"Bearer {server.world.token(sub)}",
            "Content-Type": "application/json",
            "Origin": HOST_ORIGIN,
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["message"]


def until(peer: Peer, kind: str, **expected) -> dict:
    """The next frame of `kind` whose object (its "message" or "conversation") has the expected fields."""
    for _ in range(30):
        frame = peer.recv()
        body = frame.get("message") or frame.get("conversation") or {}
        if frame["type"] == kind and all(body.get(k) == v for k, v in expected.items()):
            return frame
    raise AssertionError(f"no {kind} frame with {expected}")


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


def test_messages_typing_state_changes_and_notifications_cross_both_ways(cluster):
    a, b = cluster.a, cluster.b
    ada = AgentSession(b, "ada")  # signing in makes her available
    console = ada.socket(b)
    customer, _, _ = widget(a, "crossing")

    customer.send({"type": "send", "client_id": "c1", "body": "Written on process A"})
    conversation_id = customer.recv_until("ack")["conversation_id"]
    notify = console.recv_until("notify")
    assert (notify["kind"], notify["conversation"]["id"]) == ("assigned", conversation_id)
    customer.send({"type": "send", "client_id": "c2", "body": "Still on A"})
    assert console.recv_until("message")["message"]["body"] == "Still on A"

    # Typing indicators are not stored: they cross the processes over Redis alone.
    customer.send({"type": "typing"})
    assert console.recv_until("typing") == {"type": "typing", "conversation_id": conversation_id, "sender": "customer"}
    console.send({"type": "typing", "conversation_id": conversation_id})
    assert customer.recv_until("typing")["sender_name"] == "Ada"

    ada.post(b, f"/conversations/{conversation_id}/messages", {"client_id": "r1", "body": "Answered on B"})
    reply = until(customer, "message", sender="agent")["message"]
    assert reply["body"] == "Answered on B"

    ada.post(b, f"/conversations/{conversation_id}/park")
    until(customer, "conversation", id=conversation_id, status="waiting")

    customer.send({"type": "send", "client_id": "c3", "body": "I am back"})
    returned = console.recv_until("notify")
    assert (returned["kind"], returned["conversation"]["id"]) == ("returned", conversation_id)

    # The agent's actions on A reach the console on B, too.
    ada.post(a, f"/conversations/{conversation_id}/end")
    until(customer, "conversation", id=conversation_id, status="wrap_up")
    until(console, "conversation", id=conversation_id, status="wrap_up")
    ada.post(a, "/presence", {"presence": "offline"})
    for peer in (customer, console):
        peer.close()


def test_the_timers_run_in_one_process_at_a_time(cluster):
    """Both processes tick every half second, but only while holding the database's advisory lock: while
    someone else holds it, neither does anything."""
    with cluster.app.app_context():
        presence = select(Agent.presence).where(Agent.email == "timer@example.com")
        with db.engine.connect() as holder:
            # Held first: a tick already under way would otherwise see the agent gone before the wait.
            holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
            stale = {"presence": "available", "last_seen_at": func.now() - text("interval '1 day'")}
            db.session.execute(update(Agent).where(Agent.email == "timer@example.com").values(**stale))
            db.session.commit()
            time.sleep(2)
            assert db.session.scalar(presence) == "available"
            db.session.rollback()
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            holder.commit()

        def offline() -> bool:
            db.session.rollback()
            return db.session.scalar(presence) == "offline"

        wait_for(offline, timeout=5)


def test_concurrent_routing_on_both_processes_never_double_assigns(cluster):
    a, b = cluster.a, cluster.b
    # Each agent works on one process and listens on the other: every notification crosses Redis.
    homes = {"r1": a, "r2": a, "r3": b, "r4": b}
    sessions = {key: AgentSession(server, key) for key, server in homes.items()}
    sockets = {key: sessions[key].socket(b if homes[key] is a else a) for key in ROUTING_AGENTS}
    for key, session in sessions.items():
        session.post(homes[key], "/presence", {"presence": "away"})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: customer_writes((a, b)[i % 2], f"queued-{i}", "waiting"), range(24)))
        start = threading.Barrier(12)

        def race(i: int) -> None:
            start.wait()
            if i < len(ROUTING_AGENTS):
                key = ROUTING_AGENTS[i]
                sessions[key].post(homes[key], "/presence", {"presence": "available"})
            else:
                customer_writes((a, b)[i % 2], f"racing-{i}", "me too")

        list(pool.map(race, range(12)))

    with cluster.app.app_context():
        names = [key.upper() for key in ROUTING_AGENTS]
        agent_ids = {
            name: agent_id
            for name, agent_id in db.session.execute(select(Agent.name, Agent.id).where(Agent.name.in_(names)))
        }
        mine = select(Conversation.id, Conversation.agent_id).where(
            Conversation.status == "active", Conversation.agent_id.in_(agent_ids.values())
        )

        def settled():
            db.session.rollback()
            rows = db.session.execute(mine).all()
            return rows if len(rows) >= 2 * len(ROUTING_AGENTS) else None

        # Capacity 100 at 34 a conversation: two each, eight in all, out of 32 waiting.
        assigned = wait_for(settled)
        time.sleep(1)  # a few more ticks on both processes: nothing more may move
        assert sorted(db.session.execute(mine).all()) == sorted(assigned)
        per_agent = {agent_id: [cid for cid, aid in assigned if aid == agent_id] for agent_id in agent_ids.values()}
        assert all(len(ids) == 2 for ids in per_agent.values()), per_agent
        assignments = db.session.execute(
            select(ConversationEvent.conversation_id, func.count())
            .where(
                ConversationEvent.conversation_id.in_([cid for cid, _ in assigned]),
                ConversationEvent.to_status == "active",
            )
            .group_by(ConversationEvent.conversation_id)
        ).all()
        assert sorted(n for _cid, n in assignments) == [1] * len(assigned), "a conversation was assigned twice"

    # Every console also hears every conversation's changes: the notifications are somewhere in there.
    for key, peer in sockets.items():
        expected = set(per_agent[agent_ids[key.upper()]])
        notified: set[int] = set()
        for _ in range(1000):
            if notified == expected:
                break
            frame = peer.recv()
            if frame["type"] == "notify":
                assert frame["kind"] == "assigned"
                notified.add(frame["conversation"]["id"])
        assert notified == expected, f"{key} was told of {notified}, given {expected}"
        peer.close()


def embeds(server: ChatServer, origin: str) -> bool:
    url = server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}"
    try:
        Peer(url, origin=origin).ws.close()
    except simple_websocket.ConnectionError:
        return False
    return True


def test_a_workstream_changed_on_one_process_is_seen_by_the_other_at_once(cluster):
    """Each process keeps a copy of the workstream for its sockets' handshakes (workstream_copies.py); a
    change committed anywhere reaches every process's copy over Redis within moments, well before the
    copy's maximum age."""
    shop = "https://new-shop.example"
    assert not embeds(cluster.b, shop)
    # The site owner's change, committed by a third process that publishes as the servers do.
    admin = app_for(cluster.a.instance, REDIS_URL=TEST_REDIS_URL)
    try:
        with admin.app_context():
            workstream = db.session.get(Workstream, cluster.world.workstream_id)
            workstreams.update(workstream, {"allowed_origins": [HOST_ORIGIN, shop]})
            soon = workstream_copies.MAX_AGE_SECONDS / 2
            wait_for(lambda: embeds(cluster.b, shop) and embeds(cluster.a, shop), timeout=soon)
            workstreams.update(workstream, {"allowed_origins": [HOST_ORIGIN]})
            wait_for(lambda: not embeds(cluster.b, shop) and not embeds(cluster.a, shop), timeout=soon)
            db.engine.dispose()
    finally:
        events.hub.close()
        events.hub = events.InProcessHub()


def command(cluster, *args: str) -> str:
    """A `persistent-chat` command, run as a site owner runs it beside the servers."""
    env = {**os.environ, "DATABASE_URL": database_url(cluster.a.instance), "REDIS_URL": TEST_REDIS_URL}
    env["PERSISTENT_CHAT_INSTANCE"] = str(cluster.a.instance)
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def hello(server: ChatServer, token: str) -> tuple[Peer, dict]:
    peer = Peer(server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}")
    peer.send({"type": "hello", "token": token})
    return peer, peer.recv()


def test_a_key_added_and_retired_with_commands_is_heard_by_every_process(cluster, tmp_path):
    """A command exits right after its commit: what it announces (the settings changed, the key's sockets
    must end) still reaches the servers over Redis."""
    private, public = rsa_key_pair()
    (tmp_path / "new.pem").write_text(public)
    setting = str(cluster.world.auth_setting_id)
    command(cluster, "add-auth-key", setting, "--kid", "rotated", "--public-key", str(tmp_path / "new.pem"))
    now = int(time.time())
    claims = {"sub": "rotated-customer", "iat": now, "exp": now + 600}
    token = jwt.encode(claims, private, algorithm="RS256", headers={"kid": "rotated"})

    def welcomed_on_both() -> bool:
        answers = [hello(server, token) for server in (cluster.a, cluster.b)]
        for peer, _ in answers:
            peer.ws.close()
        return all(frame["type"] == "welcome" for _, frame in answers)

    soon = workstream_copies.MAX_AGE_SECONDS / 2
    wait_for(welcomed_on_both, timeout=soon)
    open_on_b, welcome = hello(cluster.b, token)
    assert welcome["type"] == "welcome"
    assert open_on_b.recv()["type"] == "backlog"

    command(cluster, "retire-auth-key", setting, "rotated")
    assert open_on_b.recv_until("error")["code"] == "token_key_retired"

    def refused_on_both() -> bool:
        answers = [hello(server, token)[1] for server in (cluster.a, cluster.b)]
        return all(frame.get("code") == "token_unknown_kid" for frame in answers)

    wait_for(refused_on_both, timeout=soon)
