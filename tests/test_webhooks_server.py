"""Webhooks from the real server (gunicorn, gevent worker): its scheduler delivers a customer's messages
to a receiver started by the test, signed and in order."""

import hashlib
import hmac
import json
import urllib.request

from app import webhooks
from app.extensions import db
from tests.receiver import Receiver
from tests.support import HOST_ORIGIN, ChatServer, migrated_app, seed


def test_the_server_s_scheduler_delivers_a_conversation_s_events_in_order(tmp_path):
    receiver = Receiver().start()
    instance = tmp_path / "instance"
    app = migrated_app(instance)
    world = seed(app, [HOST_ORIGIN])
    with app.app_context():
        webhook = webhooks.create(
            world.workstream_id, {"url": receiver.url + "/crm", "events": ["conversation.started", "message.created"]}
        )
        secret = webhook.secret
        db.engine.dispose()
    server = ChatServer(instance, {"SCHEDULER_INTERVAL": "0.2"}).start()
    try:
        for i, body in enumerate(["Hello", "Is anyone there?", "My order is late"]):
            request = urllib.request.Request(
                f"{server.url}/api/widget/workstreams/{world.workstream_id}/messages",
                data=json.dumps({"client_id": f"c{i}", "body": body}).encode(),
                headers={
                    "Authorization": f"Bearer {world.token('alice')}",
                    "Origin": HOST_ORIGIN,
                    "Content-Type": "application/json",
                },
                method="POST",
            )
            urllib.request.urlopen(request, timeout=10).close()
        received = receiver.wait_for("/crm", 4)
    finally:
        server.stop()
        receiver.stop()
    for r in received:
        fields = dict(part.split("=", 1) for part in r.headers["Chat-Signature"].split(","))
        signed = fields["t"].encode() + b"." + r.body
        assert fields["v1"] == hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    bodies = [json.loads(r.body) for r in received]
    assert [b["type"] for b in bodies] == ["conversation.started"] + ["message.created"] * 3
    assert [b["data"]["message"]["body"] for b in bodies[1:]] == ["Hello", "Is anyone there?", "My order is late"]
