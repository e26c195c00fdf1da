"""`make run` serves the demo: the printed admin password signs in, and the demo page's widget works."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import expect

from app import ROOT
from e2e.conftest import Console, Widget
from tests.support import free_port


def test_make_run_serves_the_demo_site_and_console(tmp_path, contexts):
    port = free_port()
    venv = Path(sys.executable).parent.parent
    clock_offset = tmp_path / "clock_offset"
    env = {
        **os.environ,
        "PERSISTENT_CHAT_INSTANCE": str(tmp_path),
        # Lets the test move the server's clock past the demo's one-minute email delay.
        "PERSISTENT_CHAT_CLOCK_OFFSET_FILE": str(clock_offset),
        "SCHEDULER_INTERVAL": "0.5",
        "PRESENCE_GRACE_SECONDS": str(3600),
    }
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"VENV={venv}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 60
        while not any("Listening at" in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            time.sleep(0.1)
        output = "".join(lines)
        url = f"http://127.0.0.1:{port}"
        password = re.search(r"admin@example.com with password: (\S+)", output).group(1)
        assert f"Console:   {url}/console/" in output and f"Demo site: {url}/demo/" in output
        assert re.search(rf'<script src="{url}/widget.js" data-workstream="[\w-]+"', output)

        page = contexts().new_page()
        page.goto(f"{url}/demo/?customer=bob")
        bob = Widget(page).open()
        bob.write("Hello from the demo site")

        agent = Console(contexts().new_page(), type("S", (), {"url": url})()).sign_in("admin@example.com", password)
        expect(agent.mine().filter(has_text="Bob Berg")).to_have_count(1)
        agent.open("Bob Berg")
        agent.reply("Welcome, Bob")
        expect(bob.messages(sender="agent")).to_contain_text("Welcome, Bob")

        # Bob leaves before the next reply; a minute later its email is printed to the log.
        page.close()
        agent.reply("Your order has shipped")
        clock_offset.write_text("120")
        deadline = time.monotonic() + 30
        while "Subject: Demo Admin replied to your message" not in "".join(lines):
            assert time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.1)
        output = "".join(lines)
        assert "SMTP_URL=log://" in output and "To: bob@example.com" in output
        assert "Your order has shipped" in output
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(15)
