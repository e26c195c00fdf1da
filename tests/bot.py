"""A small bot of the site's, as a real one is built: a receiver of the workstream's webhook that checks
the signature, and answers through the server API with its own key. It greets the customer, and when
they ask for a person it says so and hands over."""

import hashlib
import hmac
import json
import urllib.request

from tests.receiver import Received, Receiver

GREETING = "Hello, I am the shop's bot. I can tell you about orders, or ask for a person."
HANDING_OVER = "I will get you a person. One moment."
PATH = "/bot"


class Bot:
    def __init__(self, chat_url: str):
        self.chat_url = chat_url
        self.secret = ""
        self.key = ""
        self.receiver = Receiver()
        self.receiver.then = self.heard
        self.url = self.receiver.url + PATH

    def start(self) -> "Bot":
        self.receiver.start()
        return self

    def stop(self) -> None:
        self.receiver.stop()

    def verified(self, received: Received) -> dict:
        fields = dict(part.split("=", 1) for part in received.headers["Chat-Signature"].split(","))
        signed = fields["t"].encode() + b"." + received.body
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields["v1"]):
            raise AssertionError("a webhook with a wrong signature")
        return json.loads(received.body)

    def heard(self, received: Received) -> None:
        event = self.verified(received)
        if event["type"] != "message.created":
            return
        conversation, message = event["data"]["conversation"], event["data"]["message"]
        # Its own messages come back too, and after the handover the conversation is the people's.
        if conversation["status"] != "bot" or message["sender"] != "customer":
            return
        path = f"/api/server/conversations/{conversation['id']}"
        # The event's id makes the reply's client_id: a repeated delivery does not answer twice.
        if "person" in message["body"].lower():
            self.call(path + "/messages", {"sender": "bot", "client_id": event["id"], "body": HANDING_OVER})
            self.call(path + "/handover", {})
        else:
            self.call(path + "/messages", {"sender": "bot", "client_id": event["id"], "body": GREETING})

    def call(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(
            self.chat_url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
