"""The customer's read position, stored, against a real server: a read frame advances it (never
backwards), only an advance is relayed (to the customer's other widgets and to the agent's console),
and a widget that was away gets it with the backlog."""

import json
import urllib.request

import pytest
from sqlalchemy import update

from app.extensions import db
from app.models import Agent
from tests.support import HOST_ORIGIN, ChatServer, console_cookie, migrated_app, seed
from tests.test_sockets import Peer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    instance = tmp_path_factory.mktemp("read-state")
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN], {"ada": "Ada"})
    with app.app_context():
        db.session.execute(update(Agent).values(capacity=10_000, presence="available"))
        db.session.commit()
    running = ChatServer(instance).start()
    running.world = world
    yield running
    running.stop()


def widget(server, sub: str, conversation_id=None, after=0) -> tuple[Peer, dict]:
    peer = Peer(server.url.replace("http", "ws") + f"/ws/widget?workstream={server.world.workstream_id}")
    peer.send({"type": "hello", "token": server.world.token(sub), "conversation_id": conversation_id, "after": after})
    assert peer.recv()["type"] == "welcome"
    return peer, peer.recv()


def console(server) -> Peer:
    email, password = server.world.agents["ada"]
    cookie = console_cookie(server.url, email, password)
    return Peer(server.url.replace("http", "ws") + "/console/ws", origin=server.url, headers={"Cookie": cookie})


def test_a_read_advances_the_stored_position_and_only_an_advance_is_relayed(server):
    agent = console(server)
    phone, _ = widget(server, "reader")
    laptop, _ = widget(server, "reader")
    for i in (1, 2):
        phone.send({"type": "send", "client_id": f"r{i}", "body": f"message {i}"})
        conversation_id = phone.recv_until("ack")["conversation_id"]
    agent.recv_until("notify")

    phone.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    for device in (phone, laptop):
        assert device.recv_until("read") == {"type": "read", "conversation_id": conversation_id, "seq": 1}
    seen = agent.recv_until("read")
    assert (seen["conversation_id"], seen["seq"]) == (conversation_id, 1) and seen["read_at"].endswith("Z")

    # The same position again, from the other device, and an older one: nothing changes, nobody hears.
    laptop.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    phone.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    assert phone.silent() and laptop.silent() and agent.silent()

    laptop.send({"type": "read", "conversation_id": conversation_id, "seq": 2})
    for peer in (phone, laptop, agent):
        assert peer.recv_until("read")["seq"] == 2
    phone.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    assert phone.silent() and laptop.silent() and agent.silent()

    # A third device, or one that was offline meanwhile, learns the position with the backlog.
    tablet, backlog = widget(server, "reader", conversation_id, after=1)
    assert backlog["conversations"][0]["conversation"]["read_seq"] == 2
    fresh, reset = widget(server, "reader")
    assert reset["reset"] is True and reset["conversations"][0]["conversation"]["read_seq"] == 2
    for peer in (agent, phone, laptop, tablet, fresh):
        peer.close()


def test_the_console_lists_carry_what_the_customer_has_seen(server):
    phone, _ = widget(server, "listed")
    phone.send({"type": "send", "client_id": "l1", "body": "hello"})
    conversation_id = phone.recv_until("ack")["conversation_id"]
    phone.send({"type": "read", "conversation_id": conversation_id, "seq": 1})
    phone.recv_until("read")
    email, password = server.world.agents["ada"]
    request = urllib.request.Request(
        f"{server.url}/console/api/conversations/{conversation_id}",
        headers={"Cookie": console_cookie(server.url, email, password)},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        summary = json.load(response)["conversation"]
    assert summary["customer_read"]["seq"] == 1 and summary["customer_read"]["at"].endswith("Z")
    assert summary["email"]["notifications"] == "none"
    phone.close()
