"""``portico doctor`` on real apps behind one real portico: the two guides' apps (Flask
under gunicorn with ProxyFix, and the same app without it; Flask mounted by
DispatcherMiddleware under waitress, and the same app unmounted) and FastAPI under
uvicorn at /api (docs/guide/fastapi.md). Each report says what the app computed and,
where it is wrong, the setting that fixes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.integration.test_fastapi import guide_block
from tests.support.portico_proc import Portico

# Five apps under gunicorn, waitress and uvicorn take ~10 s to start: `long`; make test
# runs tests/unit/test_doctor_hook.py (the same checks, in process).
pytestmark = pytest.mark.long

REPO = Path(__file__).resolve().parents[2]
APACHE = REPO / "examples" / "apache-guide"
IIS = REPO / "examples" / "iis-guide"


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("doctor")
    plain = (APACHE / "app.py").read_text().replace("app.wsgi_app = ProxyFix(", "# (")
    assert "# (" in plain
    (tmp / "plainapp.py").write_text(plain)
    (tmp / "main.py").write_text(guide_block("python"))
    config = f"""
[server]
listen = ["http://127.0.0.1:0"]

[[app]]
name = "proxyfix"
cwd = "{APACHE}"
wsgi = "app:app"
workers = 1
bind = "127.0.0.1:{free_port()}"

[[app]]
name = "plain"
wsgi = "plainapp:app"
workers = 1
bind = "127.0.0.1:{free_port()}"

[[app]]
name = "mounted"
cwd = "{IIS}"
wsgi = "server:hostedApp"
server = "waitress"
bind = "127.0.0.1:{free_port()}"

[[app]]
name = "unmounted"
cwd = "{IIS}"
wsgi = "server:app"
server = "waitress"
bind = "127.0.0.1:{free_port()}"

[[app]]
name = "fastapi"
asgi = "main:app"
bind = "127.0.0.1:{free_port()}"

[[route]]
path = "/myapp"
app = "proxyfix"

[[route]]
path = "/plain"
app = "plain"

[[route]]
path = "/myApp"
app = "mounted"
preserve_path = true

[[route]]
path = "/other"
app = "unmounted"
preserve_path = true

[[route]]
path = "/api"
app = "fastapi"
preserve_host = true  # uvicorn never reads X-Forwarded-Host (docs/guide/fastapi.md)
"""
    proxy = Portico(config, tmp)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "portico", "doctor", "-c", str(proxy.config_path), "--json"],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PORTICO_STATE_DIR": str(proxy.state_dir), "COLUMNS": "200"})
        assert result.returncode == 1, result.stderr  # some routes are wrong on purpose
        yield {report["route"]: report for report in json.loads(result.stdout)}
    finally:
        assert proxy.stop() == 0
    assert "Traceback" not in proxy.log_text(), proxy.log_text()


def fields(report: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {f["name"]: (f["seen"], f["expected"]) for f in report["findings"] if not f["ok"]}


def fixes(report: dict[str, Any]) -> str:
    return "\n".join(line for f in report["findings"] for line in f["fix"])


def test_apache_guide_with_proxyfix_sees_everything_right(
        reports: dict[str, dict[str, Any]]) -> None:
    report = reports["/myapp"]
    assert report["answered"] and report["ok"], report
    seen = {f["name"]: f["seen"] for f in report["findings"]}
    assert seen["client"] == "127.0.0.2"  # the client, not portico (127.0.0.1)
    assert seen["prefix"] == "/myapp"
    assert seen["root_url"].endswith("/myapp/")
    assert report["middleware"] == ["werkzeug ProxyFix"]
    assert report["app_status"] == "200 OK"


def test_apache_guide_without_proxyfix_is_told_to_add_it(
        reports: dict[str, dict[str, Any]]) -> None:
    report = reports["/plain"]
    assert report["answered"] and not report["ok"]
    wrong = fields(report)
    assert wrong["client"] == ("127.0.0.1", "127.0.0.2")
    assert wrong["prefix"] == ("", "/plain")
    assert set(wrong) == {"client", "port", "prefix", "root_url"}  # gunicorn fixed the scheme
    said = fixes(report)
    assert "ProxyFix(app.wsgi_app, x_for=1)" in said
    assert "ProxyFix(app.wsgi_app, x_prefix=1)" in said
    assert "preserve_host = true" in said


def test_iis_guide_mounted_by_dispatcher_sees_everything_right(
        reports: dict[str, dict[str, Any]]) -> None:
    report = reports["/myApp"]
    assert report["ok"], report
    assert {f["name"]: f["seen"] for f in report["findings"]}["prefix"] == "/myApp"


def test_iis_guide_app_unmounted_is_told_to_mount_it(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["/other"]
    assert set(fields(report)) == {"prefix", "root_url"}  # waitress trusted the rest
    assert "DispatcherMiddleware(NotFound(), {'/other': app})" in fixes(report)
    assert report["app_status"] == "404 NOT FOUND"  # /other/ is not one of its routes


def test_fastapi_under_a_prefix_gets_its_root_path(reports: dict[str, dict[str, Any]]) -> None:
    report = reports["/api"]
    assert report["ok"], report
    seen = {f["name"]: f["seen"] for f in report["findings"]}
    assert seen["client"] == "127.0.0.2" and seen["prefix"] == "/api"
