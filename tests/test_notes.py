"""Internal notes through the console's JSON API: who may write them, what is refused, where they show."""

from tests.support import HOST_ORIGIN
from tests.test_console_http import customer_says, sign_in


def test_a_note_is_stored_apart_from_the_messages_and_listed_with_the_conversation(client, world):
    sign_in(client, world)
    first = customer_says(client, world, "Where is my order?", "n1")
    conversation_id = first["conversation_id"]
    response = client.post(f"/console/api/conversations/{conversation_id}/notes", json={"body": "  Checked: shipped  "})
    assert response.status_code == 201
    note = response.json["note"]
    assert note["body"] == "Checked: shipped" and note["author_name"] == "Ada" and note["after_seq"] == 1
    opened = client.get(f"/console/api/conversations/{conversation_id}").json
    assert [n["id"] for n in opened["notes"]] == [note["id"]]
    assert opened["conversation"]["last_seq"] == 1  # a note takes no seq: the customer's cursor has no gap
    assert client.get(f"/console/api/conversations/{conversation_id}/notes").json["notes"] == [note]
    history = client.get(
        f"/api/widget/workstreams/{world.workstream_id}/conversations/{conversation_id}/messages",
        headers={"Authorization": f"Bearer {world.token('alice')}", "Origin": HOST_ORIGIN},
    ).json
    assert [m["body"] for m in history["messages"]] == ["Where is my order?"]


def test_bad_notes_are_refused_with_a_json_error_and_nothing_stored(client, world):
    sign_in(client, world)
    conversation_id = customer_says(client, world, "Hello", "n2")["conversation_id"]
    url = f"/console/api/conversations/{conversation_id}/notes"
    for body, status, code in [
        ({"body": "   "}, 400, "empty_message"),
        ({"body": 5}, 400, "invalid_request"),
        ({"body": "x" * 4001}, 400, "message_too_long"),
        ([], 400, "invalid_json"),
    ]:
        response = client.post(url, json=body)
        assert response.status_code == status and response.json["error"]["code"] == code
    missing = client.post("/console/api/conversations/999999/notes", json={"body": "hi"})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    assert client.get(url).json["notes"] == []
    signed_out = client.application.test_client().post(url, json={"body": "hi"})
    assert signed_out.status_code == 401 and signed_out.json["error"]["code"] == "not_authenticated"
