"""The OpenAPI document stays true: every JSON route is in it, everything in it is a route, and it is
served as a valid OpenAPI 3.1 document. (Every answer the other tests receive is held to it by the
test client, tests/openapi_check.py; tests/test_openapi_fuzz.py fuzzes a live server with it.)"""

import re

from openapi_spec_validator import validate

from app.openapi import document
from tests.openapi_check import API_PREFIXES, operations, problems


def _routes(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIXES):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            found |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    return found


def test_every_api_route_is_documented_and_every_documented_operation_is_a_route(app):
    routes = _routes(app)
    assert routes, "no API routes found: the prefixes no longer match the app"
    assert sorted(routes - operations()) == [], "routes missing from app/openapi.yaml"
    assert sorted(operations() - routes) == [], "documented operations the app does not have"


def test_the_document_is_valid_openapi_3_1_and_every_operation_is_described(client):
    doc = document()
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids)) == len(operations())
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            assert op.get("summary") and op.get("tags"), f"{method.upper()} {path} needs a summary and a tag"
            # Each refusal an operation can give is documented with the JSON error body.
            for status, response in op["responses"].items():
                if status.startswith("4"):
                    assert response["$ref"].startswith("#/components/responses/"), f"{method} {path} {status}"


def test_the_document_is_served_as_json_to_any_origin(client):
    answer = client.get("/api/openapi.json", headers={"Origin": "https://tools.example"})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.get_json() == document()
    assert answer.get_json()["info"]["version"] != ""


def test_an_answer_that_breaks_the_document_is_caught():
    """The check the test client runs on every answer finds what is wrong, and where."""
    message = {
        "conversation_id": 1,
        "seq": 1,
        "sender": "robot",
        "sender_name": None,
        "body": "Hi",
        "client_id": "c-1",
        "created_at": "2026-01-01T10:00:00.000000Z",
        "attachments": [],
    }
    path = "/api/server/conversations/7/messages"
    assert problems("GET", path, 200, "application/json", {"messages": [{**message, "sender": "agent"}]}) == []
    found = problems("GET", path, 200, "application/json", {"messages": [message]})
    assert len(found) == 1 and "messages/0/sender" in found[0] and "'robot'" in found[0]
    assert "status not documented" in problems("GET", path, 418, "application/json", {})[0]
    assert "content type 'text/html'" in problems("GET", path, 200, "text/html", b"<p>")[0]
    assert any("'error' is a required property" in p for p in problems("GET", path, 404, "application/json", {}))
    # Pages and methods the document does not describe are not its business.
    assert problems("GET", "/console/login", 200, "text/html", b"") == []


def _example_path(template: str, world) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: world.workstream_id if m.group(1) == "workstream_id" else "1", template)


def test_every_operation_refuses_a_nul_in_the_query_string_with_a_documented_400(client, world):
    for method, template in sorted(operations()):
        answer = client.open(_example_path(template, world) + "?q=%00", method=method)
        assert answer.status_code == 400, (method, template, answer.status_code)
        assert answer.json["error"]["code"] == "invalid_request"


def test_every_json_body_over_the_limit_is_a_documented_413(client, world):
    oversized = b'{"body": "' + b"x" * (300 * 1024) + b'"}'
    with_bodies = [
        (method, path)
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    assert len(with_bodies) > 20
    for method, template in with_bodies:
        answer = client.open(
            _example_path(template, world), method=method.upper(), data=oversized, content_type="application/json"
        )
        assert answer.status_code == 413, (method, template, answer.status_code)
        assert answer.json["error"]["code"] == "request_entity_too_large"
