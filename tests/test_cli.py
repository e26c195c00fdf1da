"""The flask commands a site owner runs."""

import re
from pathlib import Path

from sqlalchemy import select

from app import automated_messages, passwords
from app.extensions import db
from app.models import Agent, AuthSetting, Workstream
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
