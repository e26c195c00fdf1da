"""Live workstreams: anonymous visitors, either side ends, the transcript."""

import pytest
from sqlalchemy import func, select

from app import workstreams
from app.extensions import db
from app.models import Conversation, Customer
from tests.support import HOST_ORIGIN


@pytest.fixture
def live(app, world):
    with app.app_context():
        return workstreams.create(
            {
                "name": "Live help",
                "mode": "live",
                "allowed_origins": [HOST_ORIGIN],
                "auth_setting_id": world.auth_setting_id,
            }
        ).id


def api(workstream_id: str, path: str) -> str:
    return f"/api/widget/workstreams/{workstream_id}{path}"


def visitor(client, workstream_id: str) -> dict:
    response = client.post(api(workstream_id, "/visitors"), headers={"Origin": HOST_ORIGIN})
    assert response.status_code == 201, response.json
    return {"Authorization": f"Bearer {response.json['token']}", "Origin": HOST_ORIGIN}


def test_an_anonymous_visitor_chats_ends_and_downloads_the_transcript(client, live, app):
    headers = visitor(client, live)
    for i, body in enumerate(["Hi, quick question", "Do you ship to Finland?"]):
        sent = client.post(api(live, "/messages"), json={"client_id": f"v{i}", "body": body}, headers=headers)
        assert sent.status_code == 201
    conversation_id = sent.json["message"]["conversation_id"]
    ended = client.post(api(live, f"/conversations/{conversation_id}/end"), headers=headers)
    assert ended.status_code == 200 and ended.json["conversation"]["ended"] is True
    again = client.post(api(live, f"/conversations/{conversation_id}/end"), headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "wrong_state"

    transcript = client.get(api(live, f"/conversations/{conversation_id}/transcript"), headers=headers)
    assert transcript.status_code == 200 and transcript.mimetype == "text/plain"
    assert 'filename="chat-' in transcript.headers["Content-Disposition"]
    text = transcript.get_data(as_text=True)
    assert "You: Hi, quick question" in text and "You: Do you ship to Finland?" in text and "Ended" in text
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.sub.like("visitor-%")))
        assert customer.auth_setting_id is None
        assert db.session.get(Conversation, conversation_id).status == "closed"


def test_visitors_get_no_persistent_chat(client, world, app):
    refused = client.post(api(world.workstream_id, "/visitors"), headers={"Origin": HOST_ORIGIN})
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_live"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_visitor_token_is_good_for_its_own_live_workstream_only(client, live, world, app):
    headers = visitor(client, live)
    for workstream_id in (world.workstream_id,):
        response = client.post(api(workstream_id, "/messages"), json={"client_id": "x", "body": "hi"}, headers=headers)
        assert response.status_code == 401 and response.json["error"]["code"] == "token_not_accepted"
    with app.app_context():
        other = workstreams.create({"name": "Other live", "mode": "live", "allowed_origins": [HOST_ORIGIN]}).id
    response = client.post(api(other, "/messages"), json={"client_id": "x", "body": "hi"}, headers=headers)
    assert response.status_code == 401 and response.json["error"]["code"] == "token_bad_signature"


def test_a_customer_cannot_end_a_persistent_conversation(client, world):
    headers = {"Authorization": f"Bearer {world.token('alice')}", "Origin": HOST_ORIGIN}
    sent = client.post(api(world.workstream_id, "/messages"), json={"client_id": "c", "body": "hi"}, headers=headers)
    conversation_id = sent.json["message"]["conversation_id"]
    refused = client.post(api(world.workstream_id, f"/conversations/{conversation_id}/end"), headers=headers)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "not_live"


def test_nobody_else_gets_a_visitors_transcript_or_ends_their_chat(client, live):
    owner = visitor(client, live)
    stranger = visitor(client, live)
    sent = client.post(api(live, "/messages"), json={"client_id": "v", "body": "private"}, headers=owner)
    conversation_id = sent.json["message"]["conversation_id"]
    for method, path in (("get", "/transcript"), ("post", "/end")):
        response = getattr(client, method)(api(live, f"/conversations/{conversation_id}{path}"), headers=stranger)
        assert response.status_code == 404 and "private" not in response.get_data(as_text=True)


def test_visitor_tokens_are_rate_limited_per_address(client, live, app):
    app.config["VISITOR_TOKENS_PER_ADDRESS"] = "3 per 10 minutes"
    for _ in range(3):
        visitor(client, live)
    refused = client.post(api(live, "/visitors"), headers={"Origin": HOST_ORIGIN})
    assert refused.status_code == 429 and refused.json["error"]["code"] == "rate_limited"
    elsewhere = client.post(
        api(live, "/visitors"), headers={"Origin": HOST_ORIGIN}, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert elsewhere.status_code == 201
