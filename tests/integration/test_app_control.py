"""Per-app control on a real portico with real servers: ``portico app`` over the
control socket, rolling restarts under load, instances, and reloads that change apps.

One portico (``workers = 2``) serves two apps for the module: ``web``, gunicorn with
``instances = 2``, and ``one``, uvicorn with one instance. Requests run while
``portico app restart`` does its work; every answer must be a 200.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.portico_proc import Portico
from tests.support.supervised import SUPPORT_APPS, config, tiny, wait_until

APPS = f"""
[[app]]
name = "web"
wsgi = "pidapp:app"
cwd = "{SUPPORT_APPS}"
workers = 1
instances = 2
args = ["--timeout", "30"]

[[app]]
name = "one"
asgi = "asgiapp:app"
cwd = "{SUPPORT_APPS}"
workers = 1
request_wait = "15s"

[[route]]
path = "/web"
app = "web"

[[route]]
path = "/one"
app = "one"
"""


def portico_app(proxy: Portico, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portico", "app", *args, "-c", str(proxy.config_path)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PORTICO_STATE_DIR": str(proxy.state_dir), "COLUMNS": "200"},
    )


def instances(proxy: Portico, name: str) -> list[dict[str, Any]]:
    """``GET /api/apps/NAME`` on the control socket (what ``portico app status`` asks)."""
    from portico.admin.control import control_request
    from portico.admin.runtime import control_socket, instance_key

    path = control_socket(proxy.state_dir / "run", instance_key(proxy.config_path.resolve()))
    code, body = asyncio.run(control_request(path, "GET", f"/api/apps/{name}"))
    assert code == 200, body
    rows: list[dict[str, Any]] = json.loads(body)
    return rows


class Load:
    """``clients`` threads sending GETs on kept-alive connections until stopped."""

    def __init__(self, port: int, path: str, clients: int = 4) -> None:
        self.port, self.path = port, path
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            with self._lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
        conn.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portico]:
    started = Portico(config("workers = 2\n", APPS).replace("tick = 0.1\nworkers", "workers"),
                      tmp_path_factory.mktemp("apps"))
    yield started
    started.stop()
    assert "Traceback" not in started.log_text(), started.log_text()


def test_instances_each_get_a_port_and_a_row(proxy: Portico) -> None:
    rows = instances(proxy, "web")
    assert [row["name"] for row in rows] == ["web#1", "web#2"]
    ports = [int(row["bind"].rpartition(":")[2]) for row in rows]
    assert ports[1] == ports[0] + 1
    assert all(row["state"] == "up" and row["app"] == "web" for row in rows)
    result = portico_app(proxy, "status", "nope")
    assert result.returncode == 1 and "no app 'nope'; the apps are: web, one" in result.stderr


def test_rolling_restart_under_load_answers_every_request(proxy: Portico) -> None:
    before = {row["name"]: row["pid"] for row in instances(proxy, "web")}
    with Load(proxy.port, "/web/") as load:
        wait_until(lambda: sum(load.statuses.values()) > 20, 10, "requests flowing")
        result = portico_app(proxy, "restart", "web")
        assert result.returncode == 0, result.stderr
        served = sum(load.statuses.values())
        wait_until(lambda: sum(load.statuses.values()) > served + 20, 10, "requests after")
    assert not load.errors, load.errors[:5]
    assert set(load.statuses) == {200}, load.statuses
    after = instances(proxy, "web")
    assert all(row["pid"] != before[row["name"]] and row["state"] == "up" for row in after)
    assert "app web: restarted" in result.stdout


@pytest.mark.long  # 3 s; the rolling one above is make test's
def test_one_instance_restart_waits_within_request_wait(proxy: Portico) -> None:
    with Load(proxy.port, "/one/", clients=2) as load:
        wait_until(lambda: sum(load.statuses.values()) > 10, 10, "requests flowing")
        result = portico_app(proxy, "restart", "one")
        assert result.returncode == 0, result.stderr
        served = sum(load.statuses.values())
        wait_until(lambda: sum(load.statuses.values()) > served + 10, 10, "requests after")
    assert not load.errors, load.errors[:5]
    assert set(load.statuses) == {200}, load.statuses


@pytest.mark.long  # 5-10 s: uvicorn stopped and started again
def test_stop_then_start(proxy: Portico) -> None:
    assert portico_app(proxy, "stop", "one").returncode == 0
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    conn.request("GET", "/one/")
    response = conn.getresponse()
    assert response.status == 503 and b"is stopped" in response.read()
    assert [row["state"] for row in instances(proxy, "one")] == ["stopped"]
    assert portico_app(proxy, "start", "one").returncode == 0
    conn.request("GET", "/one/")
    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.long
@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (make bench-deps)")
def test_rolling_restart_during_20s_of_wrk(proxy: Portico) -> None:
    """The issue's figure: ``portico app restart`` during a 20 s wrk run, instances = 2:
    0 non-2xx responses and no socket errors."""
    wrk = subprocess.Popen(["wrk", "-t2", "-c16", "-d20s", "--timeout", "10s",
                            f"{proxy.url}/web/"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(5)  # the restart lands in the middle of the run
    for _ in range(2):
        assert portico_app(proxy, "restart", "web").returncode == 0
    out, _ = wrk.communicate(timeout=60)
    print(out)  # the figure the issue asks for (pytest -s)
    assert "Non-2xx" not in out, out
    assert "Socket errors" not in out, out
    assert re.search(r"(\d+) requests in", out), out


@pytest.mark.long  # 13 s: a portico of its own, a reload checked in a child
def test_reload_restarts_only_the_changed_app(tmp_path: Path) -> None:
    """Changed ``[[app]]`` tables at reload: the changed app restarts, an added one
    starts, a removed one stops; the unchanged one keeps its pid."""
    path = tmp_path / "portico0.toml"
    text = config(tiny("keep"), tiny("change"), tiny("gone"))
    proxy = Portico(text, tmp_path, name=path.name)
    try:
        pids = {row["name"]: row["pid"] for row in instances(proxy, "keep")
                + instances(proxy, "change") + instances(proxy, "gone")}
        path.write_text(config(tiny("keep"), tiny("change", extra='env = { A = "1" }'),
                               tiny("added")))
        os.kill(proxy.pid, signal.SIGHUP)
        assert proxy.wait_for_log("app gone: removed from the config, stopped", 20), \
            proxy.log_text()
        assert instances(proxy, "keep")[0]["pid"] == pids["keep"]
        changed = instances(proxy, "change")[0]
        assert changed["pid"] != pids["change"] and changed["state"] == "up"
        assert instances(proxy, "added")[0]["state"] == "up"
        assert portico_app(proxy, "status", "gone").returncode == 1  # the CLI's error
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        for path_ in ("/keep", "/change", "/added"):
            conn.request("GET", path_)
            response = conn.getresponse()
            assert response.status == 200, (path_, response.read())
            response.read()
        conn.close()
    finally:
        proxy.stop()
    assert "Traceback" not in proxy.log_text(), proxy.log_text()
