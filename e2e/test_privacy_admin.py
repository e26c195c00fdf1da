"""Export and erasure from the admin pages, in Chromium: the site owner finds a customer on the privacy
page, downloads the export, erases them after the confirmation; the customer's open widget is closed
and forgets everything, and nothing of theirs is left in any table. The pages pass axe."""

import io
import json
import zipfile

from playwright.sync_api import expect
from sqlalchemy import func, select

from app.agents import add_agent
from app.extensions import db
from app.models import Conversation, Customer
from e2e.test_admin_site import sign_in
from e2e.test_widget_accessibility import axe_script, serious_violations
from tests.support import migrated_app
from tests.test_privacy import MARKER, leaks

ROOT_EMAIL, ROOT_PASSWORD = "root@example.com", "root password, long enough"
axe_script = axe_script  # the session fixture, shared


def test_the_owner_exports_then_erases_a_customer_whose_open_widget_closes(contexts, customer, chat, axe_script):
    server, site, world = chat
    app = migrated_app(server.instance)
    with app.app_context():
        add_agent(ROOT_EMAIL, "Root", "admin", ROOT_PASSWORD, capacity=0)
        db.engine.dispose()
    # Everything the customer gives carries the marker: their name, email, context and words.
    site.claims["alice"] = {"email": f"alice@{MARKER}.example"}
    site.context["alice"] = {"order": f"{MARKER}-42"}
    widget = customer("alice", name=f"Alice {MARKER}")
    # The widget is connected already: any socket opened from now on would be a reconnection.
    sockets = []
    widget.page.on("websocket", lambda socket: sockets.append(socket.url))
    widget.write(f"{MARKER}: please delete my data")
    with app.app_context():
        alice_id = db.session.scalar(select(Customer.id).where(Customer.sub == "alice"))
        theirs = list(db.session.scalars(select(Conversation.id).where(Conversation.customer_id == alice_id)))
        db.session.remove()

    owner = sign_in(contexts().new_page(), server, ROOT_EMAIL, ROOT_PASSWORD)
    owner.get_by_role("navigation", name="Admin").get_by_role("link", name="Privacy").click()
    owner.get_by_label("Authentication setting").select_option(label="Test site (#1)")
    owner.get_by_label("Sub").fill("alice")
    owner.get_by_role("button", name="Find by sub").click()
    row = owner.get_by_role("row").filter(has_text=f"Alice {MARKER}")
    expect(row).to_contain_text(f"alice@{MARKER}.example")
    expect(row).to_contain_text("1 conversation(s), 1 message(s), 0 file(s)")
    assert serious_violations(owner, axe_script) == [], "/admin/privacy with a customer found"

    with owner.expect_download() as download:
        row.get_by_role("link", name=f"Download export of Alice {MARKER}").click()
    archive = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
    data = json.loads(archive.read("customer.json"))
    assert data["customer"]["sub"] == "alice"
    [conversation] = data["conversations"]
    assert conversation["context"] == {"order": f"{MARKER}-42"}
    assert [m["body"] for m in conversation["messages"]] == [f"{MARKER}: please delete my data"]
    assert f"You: {MARKER}: please delete my data" in archive.read(f"transcripts/conversation-{theirs[0]}.txt").decode()

    row.get_by_role("link", name=f"Erase Alice {MARKER}…").click()
    warning = owner.get_by_role("region", name="What erasing does")
    expect(warning).to_contain_text("Deletes for good 1 conversation(s) (in Support), 1 message(s) and 0 file(s)")
    expect(warning).to_contain_text("Closes their open chat widgets at once, on every device.")
    assert serious_violations(owner, axe_script) == [], "the erasure's confirmation"
    erase = owner.get_by_role("button", name=f"Erase Alice {MARKER} for good")
    erase.click()
    expect(owner.locator("#error-confirm")).to_have_text("Tick the box to confirm: an erasure cannot be undone.")
    owner.get_by_label("I understand that this cannot be undone").check()
    owner.get_by_role("button", name=f"Erase Alice {MARKER} for good").click()
    expect(owner.get_by_role("status")).to_contain_text(
        "The customer was erased: 1 conversation(s) and 1 message(s) deleted, and their open chat widgets closed."
    )

    # The customer's widget closed, shows nothing of the conversation and says why.
    expect(widget.scope.get_by_role("dialog", name="Chat")).to_be_hidden()
    widget.scope.get_by_role("button", name="Open chat").click()
    expect(widget.scope.get_by_role("alert")).to_contain_text("Your chat history has been deleted.")
    expect(widget.messages()).to_have_count(0)
    assert widget.page.evaluate("Object.keys(sessionStorage)") == []
    with app.app_context():
        assert leaks(alice_id, theirs) == []
        # The widget did not come back as a new customer.
        assert db.session.scalar(select(func.count()).select_from(Customer).where(Customer.sub == "alice")) == 0
        db.session.remove()
    assert sockets == []
