"""Attachments through the widget's and the console's HTTP API, on the local disk and on an S3 bucket
(moto's standalone server, started here on a free port): upload, carry in a message, serve, refuse."""

import io
import sys
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from PIL import Image
from sqlalchemy import func, select

from app import attachments, clock, storage, timers
from app.agents import add_agent
from app.extensions import db
from app.models import Attachment, Conversation
from tests import samples
from tests.support import HOST_ORIGIN, free_port

BUCKET = "chat-files"


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture(params=["disk", "s3"])
def backend(request, app, monkeypatch):
    """The same tests on both storages; the S3 one is configured as a deployment would, by URL and
    boto3's standard environment."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        # A prefix of its own per test: the bucket outlives them.
        app.config["ATTACHMENTS_URL"] = f"s3://{BUCKET}/{uuid.uuid4().hex}"
        with app.app_context():
            store = attachments.configured_storage()
        assert isinstance(store, storage.S3Storage)
    else:
        with app.app_context():
            assert isinstance(attachments.configured_storage(), storage.DiskStorage)
    return request.param


def api(world, path=""):
    return f"/api/widget/workstreams/{world.workstream_id}{path}"


def auth(world, sub="alice"):
    return {"Authorization": f"Bearer {world.token(sub, sub.title())}", "Origin": HOST_ORIGIN}


def upload(client, world, data: bytes, name: str, sub="alice"):
    return client.post(
        api(world, "/attachments") + "?name=" + name,
        data=data,
        headers={**auth(world, sub), "Content-Type": "application/octet-stream"},
    )


def send(client, world, client_id, ids, body="", sub="alice"):
    return client.post(
        api(world, "/messages"),
        json={"client_id": client_id, "body": body, "attachments": ids},
        headers=auth(world, sub),
    )


def stored_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Attachment))


def stored_objects(app) -> list[str]:
    """Every object in storage, whichever backend: nothing may be left of a refused upload."""
    with app.app_context():
        store = attachments.configured_storage()
        if isinstance(store, storage.S3Storage):
            listing = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)
            return [o["Key"] for o in listing.get("Contents", [])]
        return [str(p) for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []


def get(client, path):
    return client.get(path)


def sign_in(client, world, key="ada"):
    email, password = world.agents[key]
    assert client.post("/console/login", data={"email": email, "password": password}).status_code == 302


# The journey ------------------------------------------------------------------------------------------


def test_customer_sends_a_screenshot_and_a_pdf_and_everyone_sees_them(app, client, world, backend):
    shot = upload(client, world, samples.png(64, 40), "screenshot.png")
    assert shot.status_code == 201, shot.json
    receipt_bytes = samples.pdf()
    receipt = upload(client, world, receipt_bytes, "receipt.pdf")
    assert receipt.status_code == 201
    shot, receipt = shot.json["attachment"], receipt.json["attachment"]
    assert (shot["content_type"], shot["image"], shot["width"], shot["height"]) == ("image/png", True, 64, 40)
    assert (receipt["content_type"], receipt["image"], receipt["thumbnail_url"]) == ("application/pdf", False, None)
    assert receipt["size"] == len(receipt_bytes) and receipt["name"] == "receipt.pdf"

    sent = send(client, world, "c1", [shot["id"], receipt["id"]], body="This is what I get")
    assert sent.status_code == 201, sent.json
    message = sent.json["message"]
    assert [a["name"] for a in message["attachments"]] == ["screenshot.png", "receipt.pdf"]

    # The history (another device) carries them too, and the links work without a token.
    (conversation,) = client.get(api(world, "/conversations"), headers=auth(world)).json["conversations"]
    (held,) = client.get(api(world, f"/conversations/{conversation['id']}/messages"), headers=auth(world)).json[
        "messages"
    ]
    assert [a["id"] for a in held["attachments"]] == [shot["id"], receipt["id"]]
    pdf = get(client, held["attachments"][1]["url"])
    assert pdf.status_code == 200 and pdf.data == receipt_bytes
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith('attachment; filename="receipt.pdf"')
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in pdf.headers["Content-Security-Policy"]
    image = get(client, held["attachments"][0]["url"])
    assert image.headers["Content-Disposition"].startswith("inline")
    assert Image.open(io.BytesIO(image.data)).size == (64, 40)
    thumbnail = get(client, held["attachments"][0]["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["Content-Type"] == "image/webp"
    assert max(Image.open(io.BytesIO(thumbnail.data)).size) <= 320

    # The agent sees them in the conversation and in the transcript; the link to the conversation is kept.
    with app.app_context():
        rows = list(db.session.scalars(select(Attachment)))
        assert {a.conversation_id for a in rows} == {conversation["id"]}
    transcript = client.get(api(world, f"/conversations/{conversation['id']}/transcript"), headers=auth(world))
    assert "attached: screenshot.png" in transcript.text and "attached: receipt.pdf" in transcript.text


def test_agent_replies_with_an_image_the_customer_gets(app, client, world, backend):
    sign_in(client, world)  # available: the conversation is pushed to Ada
    first = send(client, world, "c1", None, body="Hello?").json["message"]
    up = client.post(
        f"/console/api/conversations/{first['conversation_id']}/attachments?name=answer.png", data=samples.png(30, 20)
    )
    assert up.status_code == 201, up.json
    reply = client.post(
        f"/console/api/conversations/{first['conversation_id']}/messages",
        json={"client_id": "a1", "body": "", "attachments": [up.json["attachment"]["id"]]},
    )
    assert reply.status_code == 201, reply.json
    page = client.get(api(world, f"/conversations/{first['conversation_id']}/messages"), headers=auth(world)).json[
        "messages"
    ]
    assert page[-1]["sender"] == "agent" and page[-1]["attachments"][0]["name"] == "answer.png"
    # The console's view of the conversation has the preview.
    view = client.get(f"/console/api/conversations/{first['conversation_id']}").json
    assert view["messages"][-1]["attachments"][0]["thumbnail_url"]


def test_a_phone_photo_is_served_upright_without_its_exif(client, world, backend):
    photo = upload(client, world, samples.phone_photo(60, 30), "IMG_0001.jpg").json["attachment"]
    assert (photo["width"], photo["height"]) == (30, 60)
    served = Image.open(io.BytesIO(get(client, photo["url"]).data))
    assert served.size == (30, 60)
    assert not served.getexif() and "exif" not in served.info


def test_deleting_a_conversations_files(app, client, world, backend):
    ids = [upload(client, world, samples.png(), f"{n}.png").json["attachment"]["id"] for n in "ab"]
    conversation_id = send(client, world, "c1", ids).json["message"]["conversation_id"]
    assert len(stored_objects(app)) == 4
    with app.app_context():
        assert attachments.delete_conversations_files([conversation_id]) == 2
        db.session.commit()
        assert db.session.get(Conversation, conversation_id) is not None
    assert stored_objects(app) == [] and stored_count(app) == 0


# Refusals: each its own code, nothing stored ------------------------------------------------------------


@pytest.mark.parametrize(
    "data, name, status, code",
    [
        (samples.zip_archive(), "screenshot.png", 415, "attachment_type_not_allowed"),
        (b"MZ\x90\x00\x03" + b"\0" * 200, "setup.exe", 415, "attachment_type_not_allowed"),
        (samples.bomb(), "huge.png", 422, "attachment_image_too_large"),
        (samples.truncated_png(), "half.png", 422, "attachment_corrupt"),
        (b"", "empty.txt", 400, "attachment_empty"),
    ],
    ids=["zip-named-png", "executable", "decompression-bomb", "truncated-image", "empty"],
)
def test_bad_files_are_refused_and_nothing_is_stored(app, client, world, backend, data, name, status, code):
    answer = upload(client, world, data, name)
    assert (answer.status_code, answer.json["error"]["code"]) == (status, code)
    assert stored_count(app) == 0 and stored_objects(app) == []


def test_over_the_size_limit_is_refused_before_the_body_is_read(app, client, world, backend):
    with app.app_context():
        workstream = db.session.get(Conversation.workstream.property.mapper.class_, world.workstream_id)
        workstream.attachment_limits = attachments.validate_limits({"max_bytes": 1000})
        db.session.commit()

    class Watched(io.BytesIO):
        reads = 0

        def read(self, *args):
            Watched.reads += 1
            return super().read(*args)

    answer = client.post(
        api(world, "/attachments?name=big.txt"), input_stream=Watched(b"x" * 5000), headers=auth(world)
    )
    assert (answer.status_code, answer.json["error"]["code"]) == (413, "attachment_too_large")
    # The declared length alone refused it (a body sent without one is counted as it streams: see
    # test_attachment_server.py).
    assert Watched.reads == 0
    assert upload(client, world, b"a" * 1000, "fits.txt").status_code == 201
    assert stored_count(app) == 1


def test_a_workstream_may_allow_fewer_types_and_files(app, client, world):
    with app.app_context():
        workstream = db.session.get(Conversation.workstream.property.mapper.class_, world.workstream_id)
        workstream.attachment_limits = attachments.validate_limits({"types": ["image"], "max_files": 1})
        db.session.commit()
    answer = upload(client, world, samples.pdf(), "receipt.pdf")
    assert (answer.status_code, answer.json["error"]["code"]) == (415, "attachment_type_not_allowed")
    ids = [upload(client, world, samples.png(), f"{n}.png").json["attachment"]["id"] for n in "ab"]
    answer = send(client, world, "c1", ids)
    assert (answer.status_code, answer.json["error"]["code"]) == (400, "too_many_attachments")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Conversation)) == 0


def test_scan_command_refuses_a_marked_file(app, client, world, tmp_path, backend):
    scanner = tmp_path / "scan.py"
    scanner.write_text("import sys\nsys.exit(1 if b'INFECTED-MARKER' in open(sys.argv[1], 'rb').read() else 0)\n")
    app.config["ATTACHMENT_SCAN_COMMAND"] = f"{sys.executable} {scanner}"
    answer = upload(client, world, b"hello INFECTED-MARKER world\n", "notes.txt")
    assert (answer.status_code, answer.json["error"]["code"]) == (422, "attachment_rejected")
    assert stored_count(app) == 0 and stored_objects(app) == []
    assert upload(client, world, b"hello world\n", "notes.txt").status_code == 201


def test_someone_elses_attachment_cannot_be_sent(app, client, world):
    theirs = upload(client, world, samples.png(), "bob.png", sub="bob").json["attachment"]["id"]
    answer = send(client, world, "c1", [theirs])
    assert (answer.status_code, answer.json["error"]["code"]) == (404, "not_found")
    answer = send(client, world, "c2", ["no-such-id"])
    assert (answer.status_code, answer.json["error"]["code"]) == (404, "not_found")
    mine = upload(client, world, samples.png(), "a.png").json["attachment"]["id"]
    assert send(client, world, "c3", [mine]).status_code == 201
    answer = send(client, world, "c4", [mine])
    assert (answer.status_code, answer.json["error"]["code"]) == (409, "attachment_in_use")
    answer = send(client, world, "c5", "not-a-list")
    assert (answer.status_code, answer.json["error"]["code"]) == (400, "invalid_request")
    # A repeated client id is the stored message, not a second claim.
    assert send(client, world, "c3", [mine]).status_code == 200


def test_an_agent_cannot_attach_to_a_conversation_not_theirs(app, client, world):
    sign_in(app.test_client(), world, "ada")  # gets the conversation
    first = send(client, world, "c1", None, body="Hello?").json["message"]
    sign_in(client, world, "bo")
    answer = client.post(
        f"/console/api/conversations/{first['conversation_id']}/attachments?name=a.png", data=samples.png()
    )
    assert (answer.status_code, answer.json["error"]["code"]) == (409, "wrong_state")
    assert stored_count(app) == 0


def test_links_that_are_altered_or_expired_are_refused(app, client, world):
    photo = upload(client, world, samples.png(), "a.png").json["attachment"]
    url = urlsplit(photo["url"])
    query = parse_qs(url.query)
    expires, sig = query["expires"][0], query["sig"][0]
    assert get(client, photo["url"]).status_code == 200

    def code(path):
        answer = get(client, path)
        return answer.status_code, answer.json["error"]["code"]

    assert code(f"{url.path}?expires={int(expires) + 3600}&sig={sig}") == (403, "attachment_link_invalid")
    assert code(f"{url.path}?expires={expires}&sig={'0' * len(sig)}") == (403, "attachment_link_invalid")
    assert code(f"{url.path}?expires={expires}&sig=%C3%A9{sig[1:]}") == (403, "attachment_link_invalid")
    assert code(url.path.replace("/file", "/thumbnail") + f"?expires={expires}&sig={sig}") == (
        403,
        "attachment_link_invalid",
    )
    assert code(f"{url.path}") == (403, "attachment_link_invalid")
    with app.test_request_context():
        old = attachments.signed_path(photo["id"], "file", now=time.time() - 3 * 24 * 3600)
    assert code(old) == (403, "attachment_link_expired")


def test_html_and_svg_are_never_served_as_pages(client, world):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for data, name in ((b"<html><script>alert(1)</script></html>", "page.html"), (svg, "logo.svg")):
        answer = upload(client, world, data, name)
        assert answer.status_code == 201
        served = get(client, answer.json["attachment"]["url"])
        assert served.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert served.headers["Content-Disposition"].startswith("attachment")
        assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_names_lose_paths_and_control_characters():
    assert attachments.clean_name("../../etc/passwd") == "passwd"
    assert attachments.clean_name("C:\\Users\\me\\kuitti\u202e.pdf") == "kuitti.pdf"
    assert attachments.clean_name(None) == "file"


@pytest.mark.parametrize(
    "limits",
    [
        {"max_bytes": 0},
        {"max_files": 21},
        {"types": ["exe"]},
        {"types": [["image"]]},
        {"other": 1},
        [],
        {"max_bytes": True},
    ],
)
def test_invalid_limits_are_refused(limits):
    with pytest.raises(attachments.ChatError) as refused:
        attachments.validate_limits(limits)
    assert refused.value.code == "invalid_workstream"


def test_admins_set_a_workstreams_attachment_limits(app, client, world):
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    path = f"/admin/api/workstreams/{world.workstream_id}"
    assert client.get("/admin/api/workstreams").json["workstreams"][0]["attachment_limits"] == {
        "max_bytes": 10 * 1024 * 1024,
        "max_files": 10,
        "types": ["image", "pdf", "text", "office"],
    }
    changed = client.patch(path, json={"attachment_limits": {"max_bytes": 2048, "types": ["pdf"]}})
    assert changed.status_code == 200, changed.json
    assert changed.json["workstream"]["attachment_limits"]["max_bytes"] == 2048
    refused = client.patch(path, json={"attachment_limits": {"types": ["svg"]}})
    assert (refused.status_code, refused.json["error"]["code"]) == (400, "invalid_workstream")
    answer = upload(client, world, samples.png(), "a.png")
    assert (answer.status_code, answer.json["error"]["code"]) == (415, "attachment_type_not_allowed")


def test_uploads_no_message_took_are_deleted_by_the_timers_after_a_week(app, client, world, backend):
    sent = upload(client, world, samples.png(), "sent.png").json["attachment"]["id"]
    assert send(client, world, "c1", [sent]).status_code == 201
    upload(client, world, samples.pdf(), "forgotten.pdf")
    with app.app_context():
        assert timers.tick(clock.now() + timedelta(days=6))["unsent_files_deleted"] == 0
        assert timers.tick(clock.now() + timedelta(days=8))["unsent_files_deleted"] == 1
        assert [a.id for a in db.session.scalars(select(Attachment))] == [sent]
    assert len(stored_objects(app)) == 2  # the sent image and its thumbnail


def test_a_file_whose_bytes_are_gone_is_not_found(app, client, world, backend):
    photo = upload(client, world, samples.pdf(), "a.pdf").json["attachment"]
    with app.app_context():
        attachments.configured_storage().delete(f"{photo['id']}/file")
    answer = get(client, photo["url"])
    assert (answer.status_code, answer.json["error"]["code"]) == (404, "not_found")
