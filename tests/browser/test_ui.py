"""The UI in chromium on a real portico (its admin server, TCP on loopback) with a real
app (waitress), signed in the way `portico ui` does it (a one-time URL): the overview's
numbers move under load; an app restarted from its page while requests run loses none;
the route page's URL tester and doctor; a route edited on the config page, its diff
shown, applied and live; a degrading edit rolled back by itself; the audit log; no page
trips its CSP. Screenshots of each page go to docs/images/ui-*.png."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.portico_proc import Portico

# One portico, one app, one chromium for the module: ~15-25 s on a loaded 2-core
# machine, over make test's budget: `long` (make test-long, make test-ui).
# tests/unit/test_ui_pages.py renders the same pages in process for make test.
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


class Site:
    def __init__(self, proxy: Portico, admin: str) -> None:
        self.proxy = proxy
        self.admin = admin
        (socket,) = (proxy.state_dir / "run").glob("*.sock")
        self.unix = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)),
                                 base_url="http://localhost", timeout=30)

    def sign_in_url(self) -> str:
        answer = self.unix.post("/api/ui-session")
        assert answer.status_code == 200, answer.text
        return str(answer.json()["url"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "slowapp.py").write_text(SLOW_APP)
    port = free_port()
    config = f"""
[server]
listen = ["http://127.0.0.1:0"]
access_log = "{tmp / 'access.log'}"

[[app]]
name = "shop"
cwd = "{tmp}"
wsgi = "slowapp:app"
server = "waitress"
bind = "127.0.0.1:{free_port()}"

[[route]]
path = "/shop"
app = "shop"

[admin]
listen = "http://127.0.0.1:{port}"
watch = "1s"
"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PORTICO_NO_EXEC", "1")  # config checks in process (tests/integration/test_admin.py)
        proxy = Portico(config, tmp)
    found = Site(proxy, f"http://127.0.0.1:{port}")
    try:
        yield found
    finally:
        found.unix.close()
        assert proxy.stop() == 0
    assert "Traceback" not in proxy.log_text(), proxy.log_text()


@pytest.fixture(scope="module")
def signed_in(browser: Any, site: Site) -> Iterator[Any]:
    """A browser context with the session cookie of a one-time sign-in."""
    context = browser.new_context(viewport={"width": 1100, "height": 760})
    page = context.new_page()
    page.goto(site.sign_in_url())
    page.wait_for_url(re.compile(r"/ui/$"))
    page.close()
    yield context
    context.close()


@pytest.fixture
def page(signed_in: Any) -> Iterator[Any]:
    page = signed_in.new_page()
    page.csp_errors = []
    page.on("console", lambda m: "Content Security Policy" in m.text
            and page.csp_errors.append(m.text))
    yield page
    assert page.csp_errors == []
    page.close()


def expect(locator: Any) -> Any:
    """Playwright's waiting assertions (locator waits: the CSP forbids the eval that
    wait_for_function needs)."""
    return pytest.importorskip("playwright.sync_api").expect(locator)


def base(page: Any) -> str:
    return str(page.url.split("/ui/")[0])


def test_overview_numbers_move_under_load(site: Site, page: Any) -> None:
    page.goto(site.admin + "/ui/")
    expect(page.locator("#live")).to_contain_text("/shop")
    expect(page.locator("#chart")).to_have_attribute("data-samples", re.compile(r"[2-9]|\d\d"))
    expect(page.locator("#requests")).to_have_text("0")
    load = [threading.Thread(target=httpx.get, args=(f"{site.proxy.url}/shop/slow",),
                             kwargs={"timeout": 10}) for _ in range(3)]
    for thread in load:
        thread.start()
    expect(page.locator("#requests")).not_to_have_text("0")
    page.screenshot(path=str(IMAGES / "ui-overview.png"), full_page=True)
    for thread in load:
        thread.join()
    expect(page.locator("#requests")).to_have_text("0", timeout=10_000)


def test_restart_an_app_from_its_page_while_requests_run(site: Site, page: Any) -> None:
    page.goto(site.admin + "/ui/apps/shop")
    expect(page.locator("#app-state-value")).to_have_text("up")
    pid = site.unix.get("/api/apps").json()[0]["pid"]
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=20) as client:
            while not stop.is_set():
                statuses.append(client.get(f"{site.proxy.url}/shop/hello").status_code)

    runner = threading.Thread(target=traffic)
    runner.start()
    try:
        page.click("#app-restart")
        expect(page.locator("#app-action-result")).to_have_text("restart: done",
                                                                timeout=20_000)
        expect(page.locator("#app-state-value")).to_have_text("up")
        expect(page.locator("#log")).to_contain_text("served /hello")
        expect(page.locator("#access")).to_contain_text("GET /shop/hello")
    finally:
        stop.set()
        runner.join()
    assert site.unix.get("/api/apps").json()[0]["pid"] != pid
    assert statuses and set(statuses) == {200}, statuses  # none lost to the restart
    page.screenshot(path=str(IMAGES / "ui-app.png"), full_page=True)


def test_route_page_tests_urls_and_runs_the_doctor(site: Site, page: Any) -> None:
    page.goto(site.admin + "/ui/routes/0")
    page.fill("input[name=url]", "/shop/cart?id=1")
    page.click("#tester button")
    expect(page.locator("#tester-verdict")).to_contain_text("route /shop")
    expect(page.locator("#tester-upstream")).to_contain_text("/cart?id=1")
    page.click("#doctor")
    # a bare WSGI app under a stripped prefix does not know its prefix: the fix is named
    expect(page.locator("#doctor-verdict")).to_contain_text("mismatch")
    expect(page.locator("#doctor-report")).to_contain_text("x_prefix=1")
    page.screenshot(path=str(IMAGES / "ui-route.png"), full_page=True)


def test_edit_a_route_see_the_diff_apply_and_see_it_live(site: Site, page: Any) -> None:
    assert httpx.get(f"{site.proxy.url}/store/x", timeout=10).status_code == 404
    page.goto(site.admin + "/ui/config")
    text = page.input_value("#config-text")
    page.fill("#config-text", text.replace(
        "[admin]", '[[route]]\npath = "/store"\napp = "shop"\n\n[admin]'))
    page.click("[data-config=validate]")
    expect(page.locator("#config-outcome")).to_have_text("valid")
    page.click("[data-config=diff]")
    expect(page.locator("#config-diff")).to_contain_text('+path = "/store"')
    page.screenshot(path=str(IMAGES / "ui-config.png"), full_page=True)
    page.click("#config-apply")
    expect(page.locator("#config-outcome")).to_contain_text("applied")
    assert httpx.get(f"{site.proxy.url}/store/x", timeout=10).text == "hello"


def test_a_validation_error_is_shown_at_its_key(site: Site, page: Any) -> None:
    page.goto(site.admin + "/ui/config")
    text = page.input_value("#config-text")
    page.fill("#config-text", text.replace('path = "/store"', 'path = "store"'))
    page.click("[data-config=validate]")
    expect(page.locator("#config-outcome")).to_have_text("not valid")
    expect(page.locator("#config-errors")).to_contain_text("route")


def test_a_degrading_edit_is_rolled_back_by_itself(site: Site, page: Any) -> None:
    dead = free_port()
    page.goto(site.admin + "/ui/config")
    text = page.input_value("#config-text")
    page.fill("#config-text", text.replace(
        'path = "/store"\napp = "shop"', f'path = "/store"\nupstream = "http://127.0.0.1:{dead}"'))
    page.click("#config-apply")
    expect(page.locator("#config-outcome")).to_contain_text("applied")

    def watch() -> str:
        return str(site.unix.get("/api/config/history").json()["watch"]["result"])

    deadline = 100
    while watch() == "watching" and deadline:
        page.wait_for_timeout(100)  # the watch window is 1 s; the verdict is its to give
        deadline -= 1
    assert watch().startswith("rolled back")
    page.goto(site.admin + "/ui/config")
    expect(page.locator("table")).to_contain_text("automatic rollback")
    assert httpx.get(f"{site.proxy.url}/store/x", timeout=10).text == "hello"


def test_the_audit_log_shows_every_change(site: Site, page: Any) -> None:
    page.goto(site.admin + "/ui/audit")
    for action in ("app.restart", "apply", "automatic rollback", "login.one_time"):
        expect(page.locator("#audit")).to_contain_text(action)
    page.screenshot(path=str(IMAGES / "ui-audit.png"), full_page=True)
