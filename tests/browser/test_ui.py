"""The UI on a real portico with a real app (waitress): the overview's numbers move
under load, the app page shows the app's state and output, the route page runs the
doctor; no page breaks its strict CSP. Screenshots go to docs/images/ui-*.png."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from portico.admin.runtime import control_socket, instance_key
from portico.admin.ui.app import create_ui
from portico.admin.ui.source import ControlSource
from tests.conftest import free_port
from tests.support.portico_proc import Portico

# One portico, one app, one chromium: ~10 s idle, ~17 s on a loaded 2-core machine, over
# make test's budget: `long` (make test-long). tests/unit/test_ui_pages.py renders the
# same pages in process for make test.
pytestmark = pytest.mark.long

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SLOW_APP = '''
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.5)
    print("served", environ["PATH_INFO"], flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
'''


class UI:
    def __init__(self, proxy: Portico, url: str) -> None:
        self.proxy = proxy
        self.url = url


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "slowapp.py").write_text(SLOW_APP)
    proxy = Portico(f"""
[server]
listen = ["http://127.0.0.1:0"]
access_log = "off"

[[app]]
name = "shop"
cwd = "{tmp}"
wsgi = "slowapp:app"
server = "waitress"
bind = "127.0.0.1:{free_port()}"

[[route]]
path = "/shop"
app = "shop"
""", tmp)
    runtime = proxy.state_dir / "run"
    key = instance_key(proxy.config_path)
    source = ControlSource(control_socket(runtime, key), runtime, key)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_ui(source, tick=0.25), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        yield UI(proxy, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
        assert proxy.stop() == 0


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.csp_errors = []
    page.on("console", lambda m: "Content Security Policy" in m.text
            and page.csp_errors.append(m.text))
    yield page
    assert page.csp_errors == []
    context.close()


def test_overview_numbers_move_under_load(ui: UI, page: Any) -> None:
    page.goto(ui.url + "/")
    assert page.locator("#live").get_by_text("/shop").count() >= 1
    expect = pytest.importorskip("playwright.sync_api").expect
    # (locator waits: the page's CSP forbids the eval that wait_for_function needs)
    expect(page.locator("#chart")).to_have_attribute("data-samples", re.compile(r"[2-9]|\d\d"))
    expect(page.locator("#requests")).to_have_text("0")
    with httpx.Client(timeout=10) as client:
        load = [threading.Thread(target=client.get, args=(f"{ui.proxy.url}/shop/slow",))
                for _ in range(4)]
        for thread in load:
            thread.start()
        expect(page.locator("#requests")).not_to_have_text("0")
        page.screenshot(path=str(IMAGES / "ui-overview.png"), full_page=True)
        for thread in load:
            thread.join()
    expect(page.locator("#requests")).to_have_text("0", timeout=10_000)


def test_app_page_shows_state_and_output(ui: UI, page: Any) -> None:
    httpx.get(f"{ui.proxy.url}/shop/hello", timeout=10)
    page.goto(ui.url + "/apps/shop")
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("#app-state-value")).to_have_text("up")
    expect(page.locator("#log")).to_contain_text("served /hello")
    page.screenshot(path=str(IMAGES / "ui-app.png"), full_page=True)


def test_route_page_runs_the_doctor(ui: UI, page: Any) -> None:
    page.goto(ui.url + "/routes/0")
    page.fill("input[name=url]", "/shop/cart?id=1")
    page.click("#tester button")
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(page.locator("#tester-verdict")).to_contain_text("route /shop")
    expect(page.locator("#tester-upstream")).to_contain_text("/cart?id=1")
    page.click("#doctor")
    verdict = page.wait_for_selector("#doctor-verdict")
    assert verdict is not None
    # a bare WSGI app under a stripped prefix: it does not know its prefix, and says how
    assert "mismatch" in verdict.text_content()
    assert page.get_by_text("x_prefix=1").count() >= 1
    page.screenshot(path=str(IMAGES / "ui-route.png"), full_page=True)


def test_pages_send_a_strict_csp(ui: UI) -> None:
    response = httpx.get(ui.url + "/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and response.headers["x-frame-options"] == "DENY"
    cross = httpx.post(ui.url + "/routes/0/doctor", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
