"""A customer's data: export as a ZIP, erasure that leaves nothing of theirs in any table (every table's
columns are listed below, so a new one must be placed before this passes), through the admin API and
the CLI."""

import html
import io
import json
import zipfile

import pytest
from sqlalchemy import String, Text, func, select, update
from sqlalchemy.exc import IntegrityError

from app import (
    attachments,
    conversations,
    csat,
    customer_auth,
    labels,
    notes,
    outbox,
    privacy,
    read_state,
    routing,
    webhooks,
)
from app.agents import add_agent
from app.extensions import db
from app.models import (
    Agent,
    Attachment,
    AuditEntry,
    Conversation,
    Customer,
    EmailOptOut,
    OutboxEmail,
    OutboxWebhook,
    Workstream,
)

# Every table and its columns, and where a customer's data in it goes on erasure: "conversation" rows
# go with the customer's conversations (privacy.CONVERSATION_DELETERS), "customer" rows with the
# customer (privacy.CUSTOMER_DELETERS), "none" holds nobody's customer data. A table or column added
# without being placed here fails test_every_table_and_column_is_placed.
TABLES = {
    "agent": ("none", "id email name password_hash role presence presence_changed_at capacity max_items "
              "last_seen_at last_assigned_at session_version disabled_at notify_email created_at"),
    "auth_setting": ("none", "id name client_function issuer hs256_secret clock_skew_seconds max_lifetime_seconds "
                     "created_at"),
    "auth_key": ("none", "id auth_setting_id kid algorithm public_key_pem expires_at retired_at created_at"),
    "workstream": ("none", "id name mode distribution affinity capacity_cost allowed_presences accept_seconds "
                   "wrap_up_capacity fallback_offline_minutes hours hide_when_closed csat_enabled "
                   "auto_close_open_seconds auto_close_waiting_seconds wrap_up_seconds automated_messages "
                   "notify_email_after_minutes notify_return_url appearance attachment_limits auth_setting_id "
                   "retention_days bot_name bot_webhook_id bot_api_key_id bot_answer_seconds allowed_origins "
                   "created_at"),
    "webhook": ("none", "id workstream_id url events secret active disabled_reason created_at"),
    "audit_entry": ("none", "id created_at actor_kind actor_id actor_label action target_kind target_id target_label "
                    "changes"),
    "api_key": ("none", "id name prefix key_hash workstream_ids created_at last_used_at revoked_at"),
    "customer": ("customer", "id auth_setting_id sub display_name email created_at"),
    "email_opt_out": ("customer", "customer_id workstream_id created_at"),
    "conversation": ("conversation", "id workstream_id customer_id agent_id status last_seq version created_at "
                     "updated_at ended_at offer_expires_at released_by_id bot_answer_due_at context locale "
                     "queue_position queue_told_at "
                     "customer_read_seq customer_read_at notify_due_at emailed_seq email_status emailed_at "
                     "email_error"),
    "conversation_event": ("conversation", "id conversation_id from_status to_status actor_kind actor_id created_at"),
    "message": ("conversation", "id conversation_id seq sender_kind sender_agent_id sender_name body client_id "
                "created_at attachment_count"),
    "canned_response": ("none", "id agent_id workstream_id shortcut locale body created_at updated_at"),
    "label": ("none", "id name colour created_at"),
    "note": ("conversation", "id conversation_id agent_id author_name body after_seq created_at"),
    "conversation_label": ("conversation", "conversation_id label_id"),
    "rating": ("conversation", "conversation_id score comment created_at"),
    # Sent files go with their conversation; uploads never sent, with the customer.
    "attachment": ("conversation", "id workstream_id conversation_id message_id customer_id agent_id name "
                   "content_type size width height has_thumbnail created_at"),
    "outbox_email": ("conversation", "id kind conversation_id agent_id recipient content status attempts "
                     "next_attempt_at last_error created_at sent_at"),
    "outbox_webhook": ("conversation", "id webhook_id event_id event conversation_id payload status attempts "
                       "next_attempt_at response_code last_error created_at sent_at"),
}  # fmt: skip
MARKER = "Zyxwvut"  # in everything the customer gave: found anywhere after erasure is a leak


def test_every_table_and_column_is_placed():
    schema = {name: {c.name for c in table.columns} for name, table in db.metadata.tables.items()}
    assert schema == {name: set(columns.split()) for name, (_, columns) in TABLES.items()}


@pytest.fixture
def admin(app, client):
    with app.app_context():
        add_agent("root@example.com", "Root", "admin", "admin-password")
    client.post("/console/login", data={"email": "root@example.com", "password": "admin-password"})
    return client


def someone(world, sub: str, marker: str = MARKER) -> Customer:
    identity = customer_auth.Identity(
        world.auth_setting_id,
        sub,
        f"{sub.title()} {marker}",
        {"order": f"{marker}-42"},
        email=f"{sub}@{marker}.example",
    )
    return conversations.customer_for(identity)


def ada() -> Agent:
    agent = db.session.scalar(select(Agent).where(Agent.email == "ada@example.com"))
    routing.seen(agent.id)
    routing.set_presence(agent, "available")
    return agent


def a_history(app, world, sub: str) -> Customer:
    """Two conversations (one ended, noted, labelled and rated; one current with an agent's reply and a
    file), context, read state, an email in the outbox, webhook deliveries, an unsent upload and an
    unsubscribe: data in every table a customer's data can reach."""
    app.config.update(SMTP_URL="log://")
    webhooks.create(world.workstream_id, {"url": "http://127.0.0.1:9/hook", "events": list(webhooks.EVENTS)})
    customer = someone(world, sub)
    # Signing in makes an admin available too: Ada is the one who answers here.
    db.session.execute(update(Agent).values(presence="offline"))
    agent = ada()
    context = {"order": f"{MARKER}-42"}
    first, _ = conversations.post_customer_message(world.workstream_id, customer.id, "c1", f"{MARKER} one", context)
    conversations.post_agent_message(agent, first.conversation_id, "a1", f"Hello {MARKER}")
    conversations.end(agent, first.conversation_id)
    conversations.close_wrap_up(agent, first.conversation_id)
    # An agent's note and a label on it, and the customer's rating of it.
    notes.add(agent, first.conversation_id, f"Note about {MARKER}")
    label = labels.create(None, {"name": "Refund"})
    labels.put_on(agent, first.conversation_id, [label.id])
    workstream = db.session.get(Workstream, world.workstream_id)
    csat.rate(customer, workstream, first.conversation_id, 4, f"{MARKER} was helpful")
    second, _ = conversations.post_customer_message(world.workstream_id, customer.id, "c2", f"{MARKER} two", context)
    conversations.post_agent_message(agent, second.conversation_id, "a2", f"Answer {MARKER}")
    read_state.customer_read(customer.id, world.workstream_id, second.conversation_id, 1)
    outbox.add("customer_reply", customer.email, {"subject": MARKER, "text": MARKER}, second.conversation_id)
    db.session.add(EmailOptOut(customer_id=customer.id, workstream_id=world.workstream_id))
    db.session.commit()
    customer_id = customer.id
    # A file sent in the current conversation, and one uploaded and never sent.
    for name in (f"{MARKER}-sent.txt", f"{MARKER}-unsent.txt"):
        text = f"{MARKER} file".encode()
        workstream = db.session.get(Workstream, world.workstream_id)
        attachments.upload(io.BytesIO(text), len(text), name, workstream, customer_id=customer_id)
    [sent] = db.session.scalars(select(Attachment).where(Attachment.name == f"{MARKER}-sent.txt")).all()
    conversations.post_customer_message(world.workstream_id, customer_id, "c3", "", context, attachment_ids=[sent.id])
    return db.session.get(Customer, customer_id)


def leaks(customer_id: int, conversation_ids: list[int]) -> list[str]:
    """Every value in every table that is the customer's: their marker in any text, their id or their
    conversations' ids in any column that refers to them."""
    found = []
    for name, table in db.metadata.tables.items():
        for row in db.session.execute(select(table)).mappings():
            for column in table.columns:
                value = row[column.name]
                if isinstance(column.type, String | Text) and value and MARKER.lower() in str(value).lower():
                    found.append(f"{name}.{column.name}")
                refers = {fk.column.table.name for fk in column.foreign_keys}
                if column.primary_key:
                    refers.add(name)
                if ("customer" in refers and value == customer_id) or (
                    "conversation" in refers and value in conversation_ids
                ):
                    found.append(f"{name}.{column.name}={value}")
    return found


def test_erasure_leaves_nothing_of_the_customer_in_any_table_and_keeps_the_others(app, world, ctx):
    alice = a_history(app, world, "alice")
    bob = someone(world, "bob", "Else")
    bobs, _ = conversations.post_customer_message(world.workstream_id, bob.id, "b1", "Bob's question")
    alice_id = alice.id
    theirs = [c.id for c in db.session.scalars(select(Conversation).where(Conversation.customer_id == alice_id))]
    assert len(theirs) == 2
    before = leaks(alice_id, theirs)
    # Every table that can hold a customer's data holds some of Alice's: the check below is not empty.
    assert {entry.split(".")[0] for entry in before} >= {name for name, (place, _) in TABLES.items() if place != "none"}

    counts = privacy.erase(alice, ada())
    assert counts == {
        "conversations": 2,
        "messages": sum(1 for e in before if e.startswith("message.conversation_id=")),
    }
    db.session.expire_all()
    assert leaks(alice_id, theirs) == []
    [audit] = db.session.scalars(select(AuditEntry).where(AuditEntry.target_kind == "customer")).all()
    assert (audit.action, audit.actor_kind, audit.target_kind, audit.target_id) == (
        "customer_erased",
        "agent",
        "customer",
        "",
    )

    # Bob, the agent, the workstream and its webhook are untouched.
    assert db.session.get(Customer, bob.id) is not None
    assert [m.body for m in conversations.messages_page(bobs.conversation_id)] == ["Bob's question"]
    assert db.session.scalar(select(func.count()).select_from(OutboxWebhook)) > 0
    # Erasing is not a ban: the same person coming back is a new, empty customer.
    again = someone(world, "alice")
    assert again.id != alice_id and conversations.customer_conversations(again.id, world.workstream_id, None, 10) == []


def test_export_holds_every_conversation_message_context_and_read_state(app, world, ctx):
    alice = a_history(app, world, "alice")
    archive = zipfile.ZipFile(io.BytesIO(privacy.export(alice, None)))
    data = json.loads(archive.read("customer.json"))
    assert data["customer"]["sub"] == "alice" and data["customer"]["email"] == f"alice@{MARKER}.example"
    assert data["email_opt_outs"] == [
        {"workstream_id": world.workstream_id, "since": data["email_opt_outs"][0]["since"]}
    ]
    first, second = data["conversations"]
    assert [m["body"] for m in first["messages"]][:2] == [f"{MARKER} one", f"Hello {MARKER}"]
    assert first["status"] == "closed" and first["context"] == {"order": f"{MARKER}-42"}
    assert [e["to_status"] for e in first["events"]] == ["open", "active", "wrap_up", "closed"]
    assert second["read"]["seq"] == 1
    names = sorted(archive.namelist())
    assert names == ["customer.json"] + [f"transcripts/conversation-{c['id']}.txt" for c in (first, second)]
    transcript = archive.read(f"transcripts/conversation-{second['id']}.txt").decode()
    assert f"You: {MARKER} two" in transcript and f"Ada: Answer {MARKER}" in transcript
    [audit] = db.session.scalars(select(AuditEntry).where(AuditEntry.target_kind == "customer")).all()
    assert (audit.action, audit.actor_kind, audit.actor_id) == ("customer_exported", "cli", None)


def test_admin_api_finds_exports_and_erases(app, admin, world):
    with app.app_context():
        alice_id = a_history(app, world, "alice").id
    found = admin.get(f"/admin/api/customers?auth_setting_id={world.auth_setting_id}&sub=alice").json["customers"]
    assert [c["id"] for c in found] == [alice_id]
    assert [c["id"] for c in admin.get(f"/admin/api/customers?email=alice@{MARKER}.example").json["customers"]] == [
        alice_id
    ]
    assert admin.get(f"/admin/api/customers?auth_setting_id={world.auth_setting_id}&sub=nobody").json == {
        "customers": []
    }
    exported = admin.get(f"/admin/api/customers/{alice_id}/export")
    assert exported.status_code == 200 and exported.mimetype == "application/zip"
    assert "attachment" in exported.headers["Content-Disposition"]
    assert json.loads(zipfile.ZipFile(io.BytesIO(exported.data)).read("customer.json"))["customer"]["id"] == alice_id

    erased = admin.delete(f"/admin/api/customers/{alice_id}")
    assert erased.status_code == 200 and erased.json["erased"]["conversations"] == 2
    assert admin.get(f"/admin/api/customers/{alice_id}").status_code == 404
    assert admin.delete(f"/admin/api/customers/{alice_id}").status_code == 404
    with app.app_context():
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.target_kind == "customer").order_by(AuditEntry.id)
        )
        actions = [(a.action, a.actor_label) for a in entries]
    assert actions == [("customer_exported", "root@example.com"), ("customer_erased", "root@example.com")]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "sub=alice",
        "auth_setting_id=1",
        "auth_setting_id=x&sub=alice",
        # Once 500s: int() refuses a superscript digit, and the database a number past int4.
        "auth_setting_id=%C2%B2&sub=alice",
        "auth_setting_id=99999999999999999999&sub=alice",
        "auth_setting_id=2147483648&sub=alice",
        "email=nobody",
        "email=a@b.example&sub=a",
    ],
)
def test_admin_api_refuses_an_unclear_selection(admin, query):
    response = admin.get(f"/admin/api/customers?{query}")
    assert response.status_code == 400 and response.json["error"]["code"] == "invalid_request"


def test_admin_api_is_for_admins_only(app, world):
    email, password = world.agents["ada"]
    agent = app.test_client()
    agent.post("/console/login", data={"email": email, "password": password})
    assert agent.get("/admin/api/customers?email=a@b.example").status_code == 403
    assert agent.delete("/admin/api/customers/1").status_code == 403
    assert app.test_client().get("/admin/api/customers/1/export").status_code == 401


def test_the_privacy_page_finds_exports_and_erases_after_a_confirmation(app, admin, world):
    with app.app_context():
        alice_id = a_history(app, world, "alice").id
    assert admin.get("/admin/privacy").status_code == 200
    found = admin.get(f"/admin/privacy?auth_setting_id={world.auth_setting_id}&sub=alice")
    page = html.unescape(found.data.decode())
    assert found.status_code == 200
    assert f"Alice {MARKER}" in page and f"alice@{MARKER}.example" in page and "Test site (#1)" in page
    assert "2 conversation(s), 5 message(s), 2 file(s)" in page
    assert f'href="/admin/privacy/customers/{alice_id}/export"' in page
    by_email = html.unescape(admin.get(f"/admin/privacy?email=alice@{MARKER}.example").data.decode())
    assert f"/admin/privacy/customers/{alice_id}/erase" in by_email
    assert "No customer found." in admin.get(f"/admin/privacy?auth_setting_id={world.auth_setting_id}&sub=x").text

    exported = admin.get(f"/admin/privacy/customers/{alice_id}/export")
    assert exported.status_code == 200 and exported.mimetype == "application/zip"
    assert json.loads(zipfile.ZipFile(io.BytesIO(exported.data)).read("customer.json"))["customer"]["id"] == alice_id

    confirm = " ".join(html.unescape(admin.get(f"/admin/privacy/customers/{alice_id}/erase").text).split())
    assert "Deletes for good 2 conversation(s) (in Support), 5 message(s) and 2 file(s)" in confirm
    assert "1 of the conversations is not over yet." in confirm
    assert "Closes their open chat widgets at once" in confirm
    unconfirmed = admin.post(f"/admin/privacy/customers/{alice_id}/erase", data={})
    assert unconfirmed.status_code == 400 and 'id="error-confirm"' in unconfirmed.text
    with app.app_context():
        assert db.session.get(Customer, alice_id) is not None

    erased = admin.post(f"/admin/privacy/customers/{alice_id}/erase", data={"confirm": "1"})
    assert erased.status_code == 302
    assert "erased=1" in erased.location and "conversations=2" in erased.location and "messages=5" in erased.location
    notice = admin.get(erased.location).text
    assert "The customer was erased: 2 conversation(s) and 5 message(s) deleted" in notice
    assert admin.get(f"/admin/privacy/customers/{alice_id}/erase").status_code == 404
    with app.app_context():
        assert leaks(alice_id, []) == []
        entries = db.session.scalars(
            select(AuditEntry).where(AuditEntry.target_kind == "customer").order_by(AuditEntry.id)
        )
        assert [(a.action, a.actor_label, a.target_id) for a in entries] == [
            ("customer_exported", "root@example.com", ""),
            ("customer_erased", "root@example.com", ""),
        ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sub=alice", "auth_setting_id"),
        ("auth_setting_id=99&sub=alice", "auth_setting_id"),
        ("auth_setting_id=x&sub=alice", "auth_setting_id"),
        ("email=nobody", "email"),
    ],
)
def test_the_privacy_page_shows_an_unclear_search_beside_its_field(admin, query, field):
    refused = admin.get(f"/admin/privacy?{query}")
    assert refused.status_code == 400 and f'id="error-{field}"' in refused.text, refused.text


def test_the_privacy_pages_are_for_admins_only(app, world):
    email, password = world.agents["ada"]
    agent = app.test_client()
    agent.post("/console/login", data={"email": email, "password": password})
    assert agent.get("/admin/privacy").status_code == 403
    assert agent.get("/admin/privacy/customers/1/export").status_code == 403
    assert agent.post("/admin/privacy/customers/1/erase", data={"confirm": "1"}).status_code == 403


def test_cli_exports_and_erases(app, world, tmp_path):
    with app.app_context():
        alice_id = a_history(app, world, "alice").id
    runner = app.test_cli_runner()
    output = tmp_path / "alice.zip"
    result = runner.invoke(
        args=["export-customer", "--auth-setting", str(world.auth_setting_id), "--sub", "alice", "-o", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(zipfile.ZipFile(output).read("customer.json"))["customer"]["id"] == alice_id
    refused = runner.invoke(args=["erase-customer", "--email", f"alice@{MARKER}.example"], input="n\n")
    assert refused.exit_code == 1
    done = runner.invoke(args=["erase-customer", "--email", f"alice@{MARKER}.example", "--yes"])
    assert done.exit_code == 0 and f"Erased customer {alice_id}: 2 conversation(s)." in done.output
    assert runner.invoke(args=["erase-customer", "--id", str(alice_id), "--yes"]).exit_code == 1
    with app.app_context():
        assert db.session.get(Customer, alice_id) is None
        assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0


def test_a_widget_that_was_not_closed_cannot_write_for_an_erased_customer(app, world, ctx):
    alice = someone(world, "alice")
    alice_id = alice.id
    privacy.erase(alice, None)
    # What a socket of theirs still holds is the old customer id: the database refuses it.
    with pytest.raises(IntegrityError):
        conversations.post_customer_message(world.workstream_id, alice_id, "late", "Still here?")
    db.session.rollback()
    assert leaks(alice_id, []) == []
