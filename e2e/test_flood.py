"""An honest customer keeps chatting with an agent while another client floods the server: sockets that
never say hello, and a customer of its own sending messages, typing and read frames as fast as it can.
The flooder is refused (`rate_limited`, then closed with 1008) and stores no more than its limit; the
honest conversation goes on, every message acknowledged and delivered both ways."""

import json
import math
import threading
import time

import pytest
import simple_websocket
from playwright.sync_api import expect
from sqlalchemy import func, select
from wsproto.utilities import LocalProtocolError

from app.extensions import db
from app.models import Customer, Message
from e2e.conftest import Console, HostSite, Widget, wait_until
from tests.support import ChatServer, free_port, migrated_app, seed

FLOODER_ADDRESS = "203.0.113.66"


@pytest.fixture
def guarded_chat(tmp_path):
    """The real server behind one (pretend) proxy: the flooder names its own address in X-Forwarded-For,
    the browser, which sends none, is 127.0.0.1."""
    host_port = free_port()
    app = migrated_app(tmp_path)
    world = seed(app, [f"http://127.0.0.1:{host_port}"], {"ada": "Ada"})
    server = ChatServer(tmp_path, env={"TRUSTED_PROXIES": "1"}).start()
    site = HostSite(server.url, world, host_port)
    yield server, site, world, app
    site.close()
    server.stop()


class Flooder(threading.Thread):
    """Idle sockets that never say hello (from three addresses), and one customer that never stops
    sending (from a fourth)."""

    def __init__(self, server: ChatServer, site: HostSite, world):
        super().__init__(daemon=True)
        self.url = server.url.replace("http", "ws") + f"/ws/widget?workstream={world.workstream_id}"
        self.headers = {"Origin": site.origin}
        self.token = world.token("mallory")
        self.stop = threading.Event()
        self.refusals = 0
        self.closes: list[int] = []
        self.idle: list[simple_websocket.Client] = []

    def connect(self, address: str = FLOODER_ADDRESS) -> simple_websocket.Client | None:
        try:
            return simple_websocket.Client.connect(self.url, headers={**self.headers, "X-Forwarded-For": address})
        except simple_websocket.ConnectionError:
            return None  # refused at the handshake: the cheapest refusal there is

    def run(self) -> None:
        for i in range(30):
            if socket := self.connect(f"198.51.100.{i % 3 + 1}"):
                self.idle.append(socket)
        n = 0
        while not self.stop.is_set():
            ws = self.connect()
            if ws is None:
                time.sleep(0.2)
                continue
            try:
                ws.send(json.dumps({"type": "hello", "token": self.token}))
                while not self.stop.is_set():
                    n += 1
                    kind = ("send", "typing", "read")[n % 3]
                    frame = {"type": kind, "client_id": f"flood-{n}", "body": "x" * 4000}
                    if kind == "read":
                        frame.update(conversation_id=1, seq=1)
                    ws.send(json.dumps(frame))
                    while (raw := ws.receive(timeout=0)) is not None:
                        if json.loads(raw).get("code") == "rate_limited":
                            self.refusals += 1
            except (simple_websocket.ConnectionClosed, LocalProtocolError, OSError):
                # A send racing the server's close meets the close frame (ConnectionClosed), a connection
                # wsproto already knows is closing (LocalProtocolError) or a reset one (OSError).
                self.closes.append(ws.close_reason)

    def end(self) -> None:
        self.stop.set()
        self.join(10)
        for socket in self.idle:
            socket.close()


def test_an_honest_customer_keeps_chatting_while_another_client_floods(contexts, guarded_chat):
    server, site, world, app = guarded_chat
    agent = Console(contexts().new_page(), server).sign_in(*world.agents["ada"])
    page = contexts().new_page()
    page.goto(site.url("alice"))
    alice = Widget(page).open()
    alice.write("Hello, is anyone there?")
    agent.open("is anyone there")

    flooder = Flooder(server, site, world)
    flood_started = time.monotonic()
    flooder.start()
    try:
        wait_until(lambda: flooder.refusals > 0, timeout=30)
        refused_before = flooder.refusals
        for i in range(1, 6):
            alice.write(f"Question {i}: where is my parcel?")
            expect(agent.log().locator(".msg").filter(has_text=f"Question {i}:")).to_have_count(1)
            agent.reply(f"Answer {i}: on its way.")
            expect(alice.messages(sender="agent").filter(has_text=f"Answer {i}:")).to_have_count(1)
        # The flood kept going the whole time, and was refused and cut off.
        assert flooder.is_alive()
        assert flooder.refusals > refused_before and 1008 in flooder.closes
    finally:
        flooder.end()
    flood_minutes = math.ceil((time.monotonic() - flood_started) / 60)

    expect(alice.messages(sender="customer")).to_have_count(6)
    expect(alice.scope.locator(".pc-msg.pc-pending")).to_have_count(0)
    with app.app_context():
        mallory = db.session.scalar(select(Customer.id).where(Customer.sub == "mallory"))
        flooded = db.session.scalar(select(func.count()).select_from(Message).where(Message.client_id.like("flood-%")))
    assert mallory is not None and 0 < flooded <= 20 * flood_minutes  # MESSAGES_PER_CUSTOMER's default
