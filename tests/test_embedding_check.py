"""The embedding check: any page may ask whether its origin may embed a workstream, because a browser
hides why a websocket handshake was refused."""

from tests.support import HOST_ORIGIN


def check(client, workstream_id, origin):
    headers = {"Origin": origin} if origin else {}
    return client.get(f"/api/widget/embedding?workstream={workstream_id}", headers=headers)


def test_an_allowed_origin_hears_yes_and_a_foreign_one_no_both_readable_cross_origin(client, world):
    allowed = check(client, world.workstream_id, HOST_ORIGIN)
    foreign = check(client, world.workstream_id, "http://localhost:8000")
    assert (allowed.status_code, allowed.json) == (200, {"allowed": True})
    assert (foreign.status_code, foreign.json) == (200, {"allowed": False})
    for response in (allowed, foreign):
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert response.headers["Cache-Control"] == "no-store"


def test_a_request_without_an_origin_is_not_an_allowed_page(client, world):
    assert check(client, world.workstream_id, None).json == {"allowed": False}


def test_an_unknown_workstream_is_a_readable_404(client, world):
    for workstream_id in ("nope", ""):
        response = check(client, workstream_id, HOST_ORIGIN)
        assert response.status_code == 404
        assert response.json["error"]["code"] == "unknown_workstream"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
