"""The flask commands a site owner runs."""

import re
from pathlib import Path

from sqlalchemy import select

from app import automated_messages, passwords
from app.extensions import db
from app.models import Agent, AuthSetting, Workstream, new_public_id
from tests.support import app_for


def test_create_agent_prints_a_generated_password_that_signs_in(app):
    result = app.test_cli_runner().invoke(args=["create-agent", "Eve@Example.com", "--name", "Eve"])
    assert result.exit_code == 0, result.output
    password = re.search(r"Password: (\S+)", result.output).group(1)
    with app.app_context():
        agent = db.session.scalar(select(Agent).where(Agent.email == "eve@example.com"))
        assert passwords.verify(agent.password_hash, password) and agent.role == "agent"
    again = app.test_cli_runner().invoke(args=["create-agent", "eve@example.com", "--name", "Eve"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_create_agent_refuses_a_non_email(app):
    result = app.test_cli_runner().invoke(args=["create-agent", "eve", "--name", "Eve"])
    assert result.exit_code != 0 and "email" in result.output


def test_create_auth_setting_and_workstream_print_the_snippet(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-auth-setting", "Shop", "--client-function", "auth.getToken"])
    assert result.exit_code == 0, result.output
    setting_id = re.search(r"setting (\d+)", result.output).group(1)
    result = runner.invoke(
        args=["create-workstream", "Shop support", "--auth-setting", setting_id, "--origin", "https://shop.example"]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        workstream = db.session.scalar(select(Workstream).where(Workstream.name == "Shop support"))
        assert workstream.origins() == ["https://shop.example"] and workstream.mode == "persistent"
    assert f'data-workstream="{workstream.id}" data-auth-function="auth.getToken"' in result.output


def test_a_persistent_workstream_needs_an_auth_setting(app):
    runner = app.test_cli_runner()
    for args in (["create-workstream", "X"], ["create-workstream", "X", "--auth-setting", "99"]):
        result = runner.invoke(args=args)
        assert result.exit_code != 0
    with app.app_context():
        assert db.session.scalar(select(Workstream).where(Workstream.name == "X")) is None


def test_demo_is_idempotent_and_prints_the_password_once(app, monkeypatch):
    monkeypatch.setenv("PORT", "5123")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert first.exit_code == second.exit_code == 0
    assert "admin@example.com with password" in first.output
    assert "password" not in second.output
    assert "http://127.0.0.1:5123/demo/" in second.output and "<script src=" in second.output
    with app.app_context():
        demo = db.session.scalars(select(Workstream).where(Workstream.name == "Demo support")).all()
        assert len(demo) == 1 and "http://127.0.0.1:5123" in demo[0].origins()
        assert len(db.session.scalars(select(AuthSetting).where(AuthSetting.name == "Demo site")).all()) == 1
    # A plain server has no demo site, even with the demo data in its database.
    assert app.test_client().get("/demo/?customer=bob").status_code == 404
    assert app.test_client().get("/demo/token?customer=bob").status_code == 404
    demo_app = app_for(Path(app.instance_path), TESTING=True, DEMO=True)
    client = demo_app.test_client()
    page = client.get("/demo/?customer=bob")
    assert page.status_code == 200 and b'data-customer="bob"' in page.data
    assert client.get("/demo/token?customer=bob").json["token"]
    assert client.get("/demo/token?customer=nobody").status_code == 404
    with demo_app.app_context():
        db.engine.dispose()


def test_key_rotation_from_the_command_line(app, tmp_path):
    from tests.support import rsa_key_pair

    first, second = tmp_path / "first.pem", tmp_path / "second.pem"
    first.write_text(rsa_key_pair()[1])
    second.write_text(rsa_key_pair()[1])
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-auth-setting", "Shop", "--public-key", str(first), "--kid", "k1"])
    assert result.exit_code == 0 and "secret" not in result.output, result.output
    setting_id = re.search(r"setting (\d+)", result.output).group(1)
    result = runner.invoke(args=["add-auth-key", setting_id, "--kid", "k2", "--public-key", str(second)])
    assert result.exit_code == 0 and "RS256 key 'k2'" in result.output, result.output
    assert runner.invoke(args=["add-auth-key", setting_id, "--kid", "k2", "--public-key", str(second)]).exit_code == 2
    assert runner.invoke(args=["retire-auth-key", setting_id, "k1"]).exit_code == 0
    again = runner.invoke(args=["retire-auth-key", setting_id, "k1"])
    assert again.exit_code == 2 and "No current key" in again.output
    with app.app_context():
        setting = db.session.get(AuthSetting, int(setting_id))
        assert [(k.kid, k.retired_at is not None) for k in setting.keys] == [("k1", True), ("k2", False)]


def test_a_live_workstream_with_its_own_automated_messages_from_files(app, tmp_path):
    runner = app.test_cli_runner()
    texts = tmp_path / "messages.json"
    texts.write_text('{"position": {"texts": {"fi": "Olet {Position}."}}, "wait_time": {"enabled": false}}')
    result = runner.invoke(args=["create-workstream", "Pikachat", "--mode", "live", "--automated-messages", str(texts)])
    assert result.exit_code == 0, result.output
    with app.app_context():
        workstream = db.session.scalar(select(Workstream).where(Workstream.name == "Pikachat"))
        assert automated_messages.text(workstream, "position", "fi", {"Position": 2}) == "Olet 2."
        assert not automated_messages.enabled(workstream, "wait_time")

    for content, complaint in (("{not json", "is not valid JSON"), ('{"posiiton": {}}', "posiiton")):
        texts.write_text(content)
        refused = runner.invoke(
            args=["create-workstream", "Broken", "--mode", "live", "--automated-messages", str(texts)]
        )
        assert refused.exit_code != 0 and complaint in refused.output
    with app.app_context():
        assert db.session.scalar(select(Workstream).where(Workstream.name == "Broken")) is None


def test_an_admin_resets_disables_and_enables_agents_from_the_command_line(app, world):
    runner = app.test_cli_runner()
    email, old = world.agents["ada"]
    reset = runner.invoke(args=["set-password", email])
    assert reset.exit_code == 0, reset.output
    new = re.search(r"Password: (\S+)", reset.output).group(1)
    client = app.test_client()
    assert client.post("/console/login", data={"email": email, "password": old}).status_code == 401
    assert client.post("/console/login", data={"email": email, "password": new}).status_code == 302
    chosen = runner.invoke(args=["set-password", email, "--password", "chosen on the command line"])
    assert chosen.exit_code == 0 and "Password:" not in chosen.output
    assert client.get("/console/api/me").status_code == 401, "a reset ends the agent's sessions"
    assert runner.invoke(args=["set-password", email, "--password", "short"]).exit_code == 2

    assert runner.invoke(args=["disable-agent", email]).exit_code == 0
    refused = client.post("/console/login", data={"email": email, "password": "chosen on the command line"})
    assert refused.status_code == 403
    assert runner.invoke(args=["enable-agent", email]).exit_code == 0
    allowed = client.post("/console/login", data={"email": email, "password": "chosen on the command line"})
    assert allowed.status_code == 302
    missing = runner.invoke(args=["disable-agent", "nobody@example.com"])
    assert missing.exit_code == 2 and "No agent" in missing.output


def test_the_last_admin_cannot_be_disabled_from_the_command_line(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-agent", "boss@example.com", "--name", "Boss", "--role", "admin"]).exit_code == 0
    result = runner.invoke(args=["disable-agent", "boss@example.com"])
    assert result.exit_code == 2 and "last admin" in result.output


def one_line_usage_error(result) -> str:
    """Exit status 2 and a single line on stderr, with no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def test_bad_arguments_get_one_line_and_exit_status_2(app, world, tmp_path):
    runner = app.test_cli_runner()
    binary = tmp_path / "key.pem"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 50)
    nested = tmp_path / "hours.json"
    nested.write_text("[" * 50_000 + "]" * 50_000)
    deep_object = tmp_path / "deep.json"
    deep_object.write_text('{"a":' * 100 + "1" + "}" * 100)
    not_a_key = tmp_path / "text.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n")
    huge = str(2**63)
    setting = str(world.auth_setting_id)
    for args in (
        ["add-auth-key", setting, "--kid", "k9", "--public-key", str(binary)],
        ["add-auth-key", setting, "--kid", "k9", "--public-key", str(not_a_key)],
        ["create-auth-setting", "Shop", "--public-key", str(binary)],
        ["create-workstream", "Live", "--mode", "live", "--hours", str(nested)],
        ["create-workstream", "Live", "--mode", "live", "--hours", str(deep_object)],
        ["create-workstream", "Live", "--mode", "live", "--automated-messages", str(binary)],
        ["add-auth-key", huge, "--kid", "k9", "--public-key", str(not_a_key)],
        ["retire-auth-key", huge, "k1"],
        ["retire-auth-key", "99999", "k1"],
        ["create-workstream", "P", "--auth-setting", huge],
        ["create-auth-setting", "Shop", "--clock-skew", huge],
        ["create-auth-setting", "Shop", "--max-lifetime", "-5"],
        ["create-agent", "not-an-email", "--name", "X"],
        ["create-agent", "x@example.com", "--name", "X", "--role", "king"],
        ["create-agent", "x@example.com", "--name", "X", "--password", "short"],
        ["add-auth-key", setting, "--kid", "k9", "--public-key", str(not_a_key), "--expires", "0001-01-01T00:00+01:00"],
    ):
        one_line_usage_error(runner.invoke(args=args))
    with app.app_context():
        assert db.session.scalar(select(Workstream).where(Workstream.name == "Live")) is None
        assert db.session.scalar(select(Agent).where(Agent.email == "x@example.com")) is None


def test_a_workstream_id_never_reads_as_an_option(app):
    # Every command takes a workstream's id as an argument; one that began with "-" would be parsed as an option.
    ids = {new_public_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{12}", workstream_id) for workstream_id in ids)
