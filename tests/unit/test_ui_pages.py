"""The UI's pages in process (httpx's ASGI transport, a fixed status): they render, names
are escaped (a route or app name is attacker-chosen text in a config), the live stream
sends both the chart's numbers and the tables, and every response carries the strict
CSP. tests/browser/test_ui.py drives the same pages in chromium on a real portico."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import httpx

from portico.admin.ui.app import create_ui
from portico.admin.ui.tester import try_url
from portico.config.compile import compile_plan
from portico.config.load import parse
from portico.config.plan import ServingPlan

XSS = "<script>alert(1)</script>"
CONFIG = """
[[route]]
path = "/"
upstream = "http://127.0.0.1:9001"

[[route]]
path = "/shop"
upstream = "http://127.0.0.1:9000/base"
request_headers.set = { "X-Shop" = "{prefix}" }

[[route]]
path = "/shop/admin"
host = "admin.example.com"
upstream = "http://127.0.0.1:9002"
preserve_host = true
"""


def plan_of(text: str) -> ServingPlan:
    config = parse(text, "portico.toml")
    return compile_plan(config, Path("."), Path("."), None, {}).serving


class FixedSource:
    def __init__(self) -> None:
        self.doctored: list[str] = []
        self.scrapes = 0

    async def status(self) -> dict[str, Any]:
        return {
            "listen": ["http://127.0.0.1:8080"], "connections": 3, "requests": 1,
            "apps": [{"name": "shop", "server": "waitress", "bind": "127.0.0.1:9000",
                      "state": "up", "pid": 42, "restarts": 1, "uptime": 5.0,
                      "last_exit": 1, "last_reason": f"exited with 1 {XSS}", "log": None}],
            "routes": [{"route": f"/shop{XSS}", "upstream": "http://127.0.0.1:9000/",
                        "app": "shop", "state": "up", "path": "prefix stripped"}],
            "certificates": [],
        }

    async def plan(self) -> ServingPlan | None:
        return plan_of(CONFIG)

    async def config(self) -> dict[str, Any] | None:
        return {"file": "/srv/portico.toml", "editable": True, "text": f"# {XSS}\n",
                "etag": '"abc"', "versions": [
                    {"version": 2, "when": 1.0, "who": "owner", "action": "edit"},
                    {"version": 1, "when": 0.5, "who": "owner", "action": "apply"}]}

    async def audit(self) -> list[dict[str, Any]] | None:
        return [{"time": 1.0, "actor": XSS, "peer": "127.0.0.1:5", "action": "app.restart",
                 "target": "shop", "result": {"ok": True}}]

    async def backends(self) -> list[dict[str, Any]] | None:
        return [{"route": "/shop", "backend": "http://127.0.0.1:9000", "app": "shop",
                 "state": "up", "tls": False}]

    async def metrics(self) -> bytes | None:
        self.scrapes += 1
        n = 10 * self.scrapes
        return (f'portico_requests_total{{route="/shop",code="2xx",method="GET"}} {n}\n'
                f'portico_requests_total{{route="/shop",code="5xx",method="GET"}} {self.scrapes}\n'
                f'portico_request_duration_seconds_sum{{route="/shop"}} {0.02 * n}\n'
                f'portico_request_duration_seconds_count{{route="/shop"}} {n}\n').encode()

    async def doctor(self, route: str) -> dict[str, Any] | None:
        self.doctored.append(route)
        return {"ok": False, "url": "http://127.0.0.1:8080/shop/", "problem": None,
                "app_status": "200 OK", "findings": [
                    {"name": "prefix", "seen": "", "expected": "/shop", "ok": False,
                     "fix": ["app: wrap it, ProxyFix(app.wsgi_app, x_prefix=1)"]}]}


def client(source: FixedSource | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_ui(source or FixedSource(), tick=0.01))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def test_pages_render_escaped_with_a_strict_csp() -> None:
    asyncio.run(_pages())


async def _pages() -> None:
    async with client() as ui:
        for path in ("/", "/apps/shop", "/routes/0", "/config", "/audit"):
            page = await ui.get(path)
            assert page.status_code == 200, path
            assert XSS not in page.text and "<script src=" in page.text
            assert "unsafe-inline" not in page.headers["content-security-policy"]
            assert page.headers["x-frame-options"] == "DENY"
        overview = (await ui.get("/")).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overview
        assert 'id="backends"' in overview and "http://127.0.0.1:9000" in overview
        config = (await ui.get("/config")).text
        assert 'data-etag="&#34;abc&#34;"' in config and 'data-rollback="1"' in config
        assert 'data-rollback="2"' not in config  # the running version
        assert 'data-app-action="restart"' in (await ui.get("/apps/shop")).text
        assert (await ui.get("/apps/nope")).status_code == 404
        assert (await ui.get("/routes/7")).status_code == 404
        assert (await ui.get("/static/vendor/htmx-2.0.11.min.js")).status_code == 200


def test_the_doctor_runs_on_post_only_from_the_same_site() -> None:
    asyncio.run(_doctor())


async def _doctor() -> None:
    source = FixedSource()
    async with client(source) as ui:
        assert (await ui.get("/routes/0/doctor")).status_code == 405  # no action on GET
        cross = await ui.post("/routes/0/doctor", headers={"Sec-Fetch-Site": "cross-site"})
        assert cross.status_code == 403 and source.doctored == []
        report = await ui.post("/routes/0/doctor", headers={"Sec-Fetch-Site": "same-origin"})
        assert "x_prefix=1" in report.text and source.doctored == [f"/shop{XSS}"]


def test_the_live_stream_sends_numbers_and_tables() -> None:
    app = asyncio.run(_stream(b"app=shop", b"event: app"))
    assert "event: log" in app and "event: access" in app and "event: overview" not in app
    text = asyncio.run(_stream(b"", b"event: overview"))
    assert 'event: counts\ndata: {"t":' in text and '"requests": 1' in text
    assert "event: overview" in text and "event: log" not in text
    if importlib.util.find_spec("prometheus_client") is not None:  # with the metrics
        assert "Traffic per second" in text and "20.0 ms" in text
        assert '"per_second": null' not in text.split("event: counts")[2]


async def _stream(query: bytes, last: bytes) -> str:
    """Two rounds of /events (an endless stream: the client leaves after the second
    ``last`` event)."""
    chunks: list[bytes] = []
    left = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        chunks.append(message.get("body", b""))
        if sum(last in chunk for chunk in chunks) >= 2:  # two ticks: one rate
            left.set()

    scope = {"type": "http", "method": "GET", "path": "/events", "raw_path": b"/events",
             "root_path": "", "query_string": query, "headers": [],
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    await asyncio.wait_for(create_ui(FixedSource(), tick=0.01)(scope, receive, send), 10)
    return b"".join(chunks).decode()


def test_the_url_tester_names_the_winner_what_it_shadows_and_the_upstream_request() -> None:
    plan = plan_of(CONFIG)
    shop = try_url(plan, "/shop/cart?id=1", "www.example.com:8080")
    assert shop.winner == "/shop" and shop.shadowed == ["/"]
    assert shop.upstream == "GET http://127.0.0.1:9000/base/cart?id=1"
    headers = dict(shop.headers)
    assert headers["Host"] == "127.0.0.1:9000"
    assert headers["X-Forwarded-Host"] == "www.example.com:8080"
    assert headers["X-Forwarded-Prefix"] == "/shop" and headers["X-Shop"] == "/shop"
    admin = try_url(plan, "http://admin.example.com/shop/admin/users")
    assert admin.winner == "admin.example.com/shop/admin"
    assert admin.shadowed == ["/", "/shop"] and admin.why.startswith("exact host")
    assert dict(admin.headers)["Host"] == "admin.example.com"  # preserve_host
    assert try_url(plan, "/shop/%2e%2e/%2e%2e/etc", "x").error is not None


def test_the_tester_page() -> None:
    async def run() -> str:
        async with client() as ui:
            return (await ui.get("/test", params={"url": "/shop/x", "host": "a"})).text
    text = asyncio.run(run())
    assert "route <code>/shop" in text and "GET http://127.0.0.1:9000/base/x" in text


def test_traffic_rates_start_over_when_counters_go_back() -> None:
    from portico.admin.ui.traffic import Rates, Totals

    rates = Rates()
    assert rates.update(Totals({"/a": {"2xx": 100.0}}), 10.0) == []
    (row,) = rates.update(Totals({"/a": {"2xx": 150.0, "5xx": 10.0}}), 12.0)
    assert row.per_second == 30.0 and row.classes["5xx"] == 5.0 and row.latency_ms is None
    assert rates.update(Totals({"/a": {"2xx": 3.0}}), 13.0) == []  # a new portico
