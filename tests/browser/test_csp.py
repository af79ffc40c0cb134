"""Every UI page in chromium, served on its own with a fixed status (no portico, no
app): no page trips its strict CSP, the htmx and uPlot scripts run (the chart takes
samples from the live stream), and a script-like route name stays text. The quick
browser check (make test-ui): ~15 s with chromium's start on a loaded 2-core machine,
so `long` like tests/browser/test_ui.py; make test renders the same pages in process
(tests/unit/test_ui_pages.py)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from portico.admin.ui.app import create_ui
from tests.conftest import free_port
from tests.unit.test_ui_pages import XSS, FixedSource

pytestmark = pytest.mark.long


@pytest.fixture(scope="module")
def ui_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_ui(FixedSource(), tick=0.1),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_no_page_breaks_its_csp_and_the_scripts_run(browser: Any, ui_url: str) -> None:
    expect = pytest.importorskip("playwright.sync_api").expect
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    def console(message: Any) -> None:
        if message.type in ("error", "warning"):
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    page.goto(ui_url + "/")
    expect(page.locator("#chart")).to_have_attribute("data-samples", re.compile(r"[2-9]|\d\d"))
    expect(page.locator("#live")).to_contain_text(f"/shop{XSS}")  # as text, after a swap
    for path in ("/apps/shop", "/routes/0", "/config", "/audit"):
        page.goto(ui_url + path)
        expect(page.locator("main")).not_to_be_empty()
    page.goto(ui_url + "/routes/0")
    page.click("#tester button")  # the route's sample URL: the name comes back as text
    expect(page.locator("#tester-verdict")).to_contain_text(f"/shop{XSS}/x → route /")
    context.close()
    assert problems == []
