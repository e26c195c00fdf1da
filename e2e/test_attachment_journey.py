"""Attachments both ways in Chromium: the customer pastes a screenshot and attaches a PDF, the agent sees
the thumbnail and downloads the PDF, replies with an image the customer sees and opens in the panel; a
second device has them in its history; a file chosen offline is sent once when the connection is back."""

import base64
import contextlib
import re
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from e2e.conftest import Console, HostSite, Widget
from tests import samples
from tests.support import ChatServer, free_port, migrated_app, seed

SCREENSHOT = samples.png(120, 80, (10, 160, 90))
RECEIPT = samples.pdf("Receipt 1234")
ANSWER = samples.png(90, 60, (220, 120, 0))


@pytest.fixture(scope="module")
def chat(tmp_path_factory):
    """One server for the module: the tests follow one customer's story."""
    tmp_path = tmp_path_factory.mktemp("attachments")
    host_port = free_port()
    world = seed(migrated_app(tmp_path), [f"http://127.0.0.1:{host_port}"], {"ada": "Ada"})
    server = ChatServer(tmp_path, env={"SCHEDULER_INTERVAL": "0.5"}).start()
    site = HostSite(server.url, world, host_port)
    yield server, site, world
    site.close()
    server.stop()


@pytest.fixture(scope="module")
def agent(browser, chat):
    server, _site, world = chat
    context = browser.new_context(accept_downloads=True)
    console = Console(context.new_page(), server).sign_in(*world.agents["ada"])
    yield console
    context.close()


@pytest.fixture
def device(browser, chat):
    _server, site, _world = chat
    opened = []

    def open_as(sub: str = "alice") -> Widget:
        context = browser.new_context()
        opened.append(context)
        page = context.new_page()
        page.goto(site.url(sub))
        return Widget(page).open()

    yield open_as
    for context in opened:
        context.close()


def paste_image(widget: Widget, data: bytes, name: str) -> None:
    """What the browser does when a screenshot is pasted into the message box."""
    widget.box.focus()
    widget.box.evaluate(
        """(box, [b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/png" }));
            const paste = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true });
            box.dispatchEvent(paste);
        }""",
        [base64.b64encode(data).decode(), name],
    )


def attach(widget: Widget, data: bytes, name: str, kind: str) -> None:
    with widget.page.expect_file_chooser() as chooser:
        widget.scope.get_by_role("button", name="Attach files").click()
    chooser.value.set_files({"name": name, "mimeType": kind, "buffer": data})


def loaded(image) -> None:
    """The image is on screen with its pixels, not a broken icon."""
    expect(image).to_be_visible()
    image.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def test_screenshot_and_pdf_reach_the_agent_who_answers_with_an_image(agent, device):
    alice = device("alice")
    paste_image(alice, SCREENSHOT, "screenshot.png")
    attach(alice, RECEIPT, "receipt.pdf", "application/pdf")
    tray = alice.scope.locator(".pc-tray .pc-chip")
    expect(tray).to_have_count(2)
    # Each upload shows its progress until it is stored; then the bar goes.
    expect(tray.locator("progress")).to_have_count(0)
    alice.write("This is the error I get")
    sent = alice.messages(sender="customer").last
    expect(sent.locator(".pc-thumb img")).to_have_attribute("alt", "screenshot.png")
    expect(sent.get_by_role("link", name="Download receipt.pdf")).to_be_visible()

    agent.open("This is the error I get")
    message = agent.log().locator(".msg").filter(has_text="This is the error I get")
    loaded(message.get_by_role("button", name="View screenshot.png").locator("img"))
    with agent.page.expect_download() as download:
        message.get_by_role("link", name="receipt.pdf").click()
    assert download.value.suggested_filename == "receipt.pdf"
    with open(download.value.path(), "rb") as f:
        assert f.read() == RECEIPT

    agent.page.locator("#compose input[type=file]").set_input_files(
        {"name": "answer.png", "mimeType": "image/png", "buffer": ANSWER}
    )
    expect(agent.page.locator(".file-chip progress")).to_have_count(0)
    expect(agent.page.locator(".file-chip")).to_have_count(1)
    agent.page.get_by_label("Reply").fill("Try this setting")
    agent.page.locator("#conversation").get_by_role("button", name="Send").click()
    expect(agent.log().locator(".msg").filter(has_text="Try this setting").locator(".msg-thumb")).to_have_count(1)
    expect(agent.page.locator(".file-chip")).to_have_count(0)

    reply = alice.messages(sender="agent").filter(has_text="Try this setting")
    thumbnail = reply.locator(".pc-thumb")
    loaded(thumbnail.locator("img"))
    # Full size inside the panel, no new window; Escape goes back.
    thumbnail.click()
    viewer = alice.scope.get_by_role("dialog", name="answer.png")
    loaded(viewer.locator("img"))
    assert viewer.locator("img").evaluate("img => img.naturalWidth") == 90
    assert len(alice.page.context.pages) == 1
    alice.page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    expect(alice.scope.get_by_role("dialog", name="Chat")).to_be_visible()


def test_a_second_device_shows_the_attachments_in_the_history(device):
    phone = device("alice")
    first = phone.messages(sender="customer").filter(has_text="This is the error I get")
    loaded(first.locator(".pc-thumb img"))
    expect(first.get_by_role("link", name="Download receipt.pdf")).to_be_visible()
    expect(first.locator(".pc-file small")).to_contain_text("application/pdf")
    loaded(phone.messages(sender="agent").filter(has_text="Try this setting").locator(".pc-thumb img"))


def test_a_refused_file_says_why_and_is_not_sent(device):
    alice = device("alice")
    attach(alice, samples.zip_archive(), "photo.png", "image/png")
    chip = alice.scope.locator(".pc-tray .pc-chip")
    expect(chip).to_contain_text("This type of file cannot be sent.")
    expect(chip.get_by_role("button", name="Try again")).to_have_count(0)
    chip.get_by_role("button", name="Remove photo.png").click()
    expect(chip).to_have_count(0)


def test_a_file_chosen_offline_is_sent_once_when_back(agent, device):
    alice = device("alice")
    expect(alice.scope.get_by_role("status")).to_have_text("")  # connected
    alice.page.context.set_offline(True)
    expect(alice.scope.get_by_role("status")).to_have_text("Reconnecting…")
    attach(alice, samples.pdf("Offline"), "offline.pdf", "application/pdf")
    alice.box.fill("Sent from the train")
    alice.box.press("Enter")
    pending = alice.messages(sender="customer").filter(has_text="Sent from the train")
    expect(pending).to_contain_text("Not sent yet: waiting for the connection.")
    expect(pending.locator(".pc-chip")).to_contain_text("offline.pdf")

    alice.page.context.set_offline(False)
    expect(pending).to_have_attribute("data-seq", re.compile(r"^\d+$"), timeout=15000)
    expect(pending.get_by_role("link", name="Download offline.pdf")).to_be_visible()
    agent.open("Sent from the train")
    arrived = agent.log().locator(".msg").filter(has_text="Sent from the train")
    expect(arrived).to_have_count(1)
    expect(arrived.get_by_role("link", name="offline.pdf")).to_have_count(1)


def test_the_agent_sees_the_customers_images_in_their_earlier_conversation(agent, device):
    agent.open("Sent from the train")
    agent.page.get_by_role("button", name="End conversation").click()
    agent.page.get_by_role("dialog").get_by_role("button", name="End").click()
    alice = device("alice")
    alice.write("A new question")
    agent.open("A new question")
    earlier = agent.page.locator("#history details").first
    earlier.locator("summary").click()
    preview = earlier.get_by_role("button", name="View screenshot.png")
    loaded(preview.locator("img"))
    expect(earlier.get_by_role("link", name="receipt.pdf")).to_be_visible()
    preview.click()
    viewer = agent.page.get_by_role("dialog", name="Attachment")
    loaded(viewer.get_by_role("img", name="screenshot.png"))
    assert viewer.get_by_role("img", name="screenshot.png").evaluate("img => img.naturalWidth") == 120
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()
    expect(preview).to_be_focused()


def drop_files(widget: Widget, files: list[tuple[bytes, str, str]]) -> None:
    """What the browser does when files are dragged from the desktop onto the chat panel."""
    widget.scope.get_by_role("dialog", name="Chat").evaluate(
        """(panel, files) => {
            const transfer = new DataTransfer();
            for (const [b64, name, type] of files) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            for (const type of ["dragover", "drop"]) {
                panel.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        [[base64.b64encode(data).decode(), name, kind] for data, name, kind in files],
    )


def test_dropped_files_show_progress_and_can_be_retried_or_cancelled(agent, device):
    alice = device("bea")
    expect(alice.scope.get_by_role("status")).to_have_text("")
    held = []
    failing = {"left": 1}

    def hold_or_fail(route):
        # The first upload fails on the network; the rest wait here until the test lets them go.
        if failing["left"]:
            failing["left"] -= 1
            route.abort()
        else:
            held.append(route)

    alice.page.route("**/attachments?name=*", hold_or_fail)
    drop_files(alice, [(samples.png(), "first.png", "image/png")])
    chip = alice.scope.locator(".pc-tray .pc-chip")
    expect(chip).to_contain_text("Upload failed.")
    chip.get_by_role("button", name="Try again").click()
    expect(chip.get_by_role("progressbar")).to_be_visible()  # under way, held by the route
    drop_files(alice, [(samples.pdf(), "second.pdf", "application/pdf")])
    expect(chip).to_have_count(2)
    deadline = time.monotonic() + 5
    while len(held) < 2:  # Playwright calls route handlers while it waits, not during time.sleep
        assert time.monotonic() < deadline, "the uploads did not reach the route"
        alice.page.wait_for_timeout(50)
    alice.scope.get_by_role("button", name="Remove second.pdf").click()
    expect(chip).to_have_count(1)
    alice.page.unroute("**/attachments?name=*")
    for route in held:
        # The cancelled upload's request is gone already.
        with contextlib.suppress(PlaywrightError):
            route.continue_()
    expect(chip.get_by_role("progressbar")).to_have_count(0)
    # A message of files alone, no text.
    alice.scope.get_by_role("button", name="Send", exact=True).click()
    sent = alice.messages(sender="customer").last
    expect(sent).to_have_attribute("data-seq", re.compile(r"^\d+$"))
    expect(sent.locator(".pc-thumb img")).to_have_attribute("alt", "first.png")
    expect(sent.locator(".pc-file")).to_have_count(0)
    expect(sent.locator(".pc-body")).to_be_hidden()
    # The console's lists preview it by its file (Ada is full by now: it waits in the queue).
    expect(agent.page.locator(".conv-list li").filter(has_text="📎 first.png")).to_have_count(1)
