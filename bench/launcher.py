"""How fast the widget's launcher is ready on a host page, in the system's Chromium.

    .venv/bin/python bench/launcher.py [--runs 15]

Serves the real server and a host page on another origin (as the e2e tests do), loads the page in a
fresh browser context per run and prints medians of:
  - script arrival → launcher ready: from the end of the widget.js response (Resource Timing) to the
    widget's `ready` event (launcher in the page with its handlers), and to the next frame painted;
  - the host page's layout shift (PerformanceObserver "layout-shift"), which the widget must not add to;
  - the host page's load event without the widget, with the plain async tag, and with the tag added
    after the load event (the "load-friendly" embed in widget/README.md). An async script still
    holds the load event until it has arrived and run; only the after-load embed leaves it alone.
Also prints the script's size as served and gzipped.
"""

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from e2e.conftest import CHROMIUM_FLAGS, HostSite, chromium_path  # noqa: E402
from tests.support import ChatServer, free_port, migrated_app, seed  # noqa: E402

# Registered through the command queue before the page's own scripts, so the widget reports its ready
# moment to the bench and not to a test harness polling the DOM.
PROBE = """
window.__shift = 0;
new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { window.__shift += e.value; });
}).observe({type: "layout-shift", buffered: true});
window.PersistentChat = { q: [["on", ["ready", function () {
  window.__ready = performance.now();
  requestAnimationFrame(function () { setTimeout(function () { window.__painted = performance.now(); }); });
}]]] };
"""


AFTER_LOAD = """<script>
  window.addEventListener("load", function () {
    var tag = document.createElement("script");
    tag.src = "%s/widget.js";
    tag.async = true;
    tag.dataset.workstream = "%s";
    tag.dataset.authFunction = "getChatToken";
    document.body.appendChild(tag);
  });
</script>"""


def measure(browser, site: HostSite, embed: str) -> dict:
    """embed: "none", "async" (the script tag) or "after-load" (added by a snippet on the load event)."""
    site.copies = 1 if embed == "async" else 0
    site.head = AFTER_LOAD % (site.chat_url, site.world.workstream_id) if embed == "after-load" else ""
    context = browser.new_context()
    try:
        context.add_init_script(PROBE)
        page = context.new_page()
        page.goto(site.url("alice"), wait_until="load")
        if embed != "none":
            page.wait_for_function("window.__painted !== undefined")
            expect(page.get_by_role("button", name="Open chat")).to_be_enabled()
        return page.evaluate(
            """() => {
                const script = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/widget.js"));
                const nav = performance.getEntriesByType("navigation")[0];
                return {arrived: script ? script.responseEnd : null, ready: window.__ready ?? null,
                        painted: window.__painted ?? null, load: nav.loadEventStart, shift: window.__shift};
            }"""
        )
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs

    instance = Path(tempfile.mkdtemp(prefix="pc-bench-launcher-"))
    host_port = free_port()
    world = seed(migrated_app(instance), [f"http://127.0.0.1:{host_port}"], {})
    server = ChatServer(instance).start()
    site = HostSite(server.url, world, host_port)
    try:
        script = urllib.request.urlopen(server.url + "/widget.js").read()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            measure(browser, site, "async")  # warm-up: server imports, Chromium's first context
            results = {embed: [] for embed in ("none", "async", "after-load")}
            for _ in range(runs):
                for embed, found in results.items():
                    found.append(measure(browser, site, embed))
            browser.close()
    finally:
        site.close()
        server.stop()

    def median(values) -> float:
        return statistics.median(values)

    print(f"cores: {os.cpu_count()}, runs: {runs}")
    print(f"widget.js: {len(script)} bytes, {len(gzip.compress(script, compresslevel=9))} bytes gzipped")
    for embed in ("async", "after-load"):
        found = results[embed]
        print(
            f"{embed} tag: script arrival → launcher ready {median(r['ready'] - r['arrived'] for r in found):.1f} ms,"
            f" → next frame {median(r['painted'] - r['arrived'] for r in found):.1f} ms"
        )
    for embed, found in results.items():
        print(
            f"host load event ({embed}): {median(r['load'] for r in found):.1f} ms after navigation start,"
            f" layout shift {max(r['shift'] for r in found):.3f} at most"
        )


if __name__ == "__main__":
    main()
