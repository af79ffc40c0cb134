"""Apps run and kept up by portico: real gunicorn, waitress, uvicorn and plain commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from portico.config.plan import AppPlan
from portico.supervisor.logs import AppLog
from portico.supervisor.process import AppProcess
from tests.conftest import free_port
from tests.support.portico_proc import Portico, StartPortico
from tests.support.procs import alive, descendants, kill_leftovers
from tests.support.supervised import (
    REPO,
    SUPPORT_APPS,
    app_status,
    config,
    run_to_exit,
    status,
    tiny,
    wait_until,
)


def demo_app() -> str:
    """The bundled guide app under gunicorn (2 gevent workers) at /myapp."""
    return f"""
[[app]]
name = "myapp"
wsgi = "portico.demo.app:app"
workers = 2
bind = "127.0.0.1:{free_port()}"

[[route]]
path = "/myapp"
app = "myapp"
"""


def from_127_0_0_2() -> httpx.Client:
    """A client whose source address is not portico's (127.0.0.1)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)


def example(name: str, app_port: int) -> str:
    """An examples/ config, moved to ephemeral ports and pointed at its own directory."""
    directory = REPO / "examples" / name
    text = (directory / "portico.toml").read_text()
    text = text.replace('"http://127.0.0.1:8080"', '"http://127.0.0.1:0"')
    text = text.replace('bind = "127.0.0.1:8000"', f'bind = "127.0.0.1:{app_port}"')
    text = text.replace('bind = "127.0.0.1:50100"', f'bind = "127.0.0.1:{app_port}"')
    return text.replace("[[app]]\n", f'[[app]]\ncwd = "{directory}"\n', 1)


# -- the two guides' deployments ------------------------------------------------------

def test_apache_guide_example(start_portico: StartPortico) -> None:
    proxy = start_portico(example("apache-guide", free_port()))
    with from_127_0_0_2() as client:
        hello = client.get(f"{proxy.url}/myapp/")
        info = client.get(f"{proxy.url}/myapp/whoami", headers={"Host": "my.site.com:8080"}).json()
    assert hello.text == "Hello from behind the proxy!\n"
    assert info == {
        "remote_addr": "127.0.0.2",  # the client, not portico
        "scheme": "http",
        "host": "my.site.com:8080",
        "script_root": "/myapp",
        "external_url": "http://my.site.com:8080/myapp/",
    }
    assert "myapp | " in proxy.log_text()  # the app's output, named, on the console
    assert "Using worker: gevent" in proxy.log_text()


def test_iis_guide_example(start_portico: StartPortico) -> None:
    proxy = start_portico(example("iis-guide", free_port()))
    with from_127_0_0_2() as client:
        assert client.get(f"{proxy.url}/myApp/").text == "Hello World!!!"
        assert client.get(f"{proxy.url}/myApp/help").text == "This is the Help Page"
        missing = client.get(f"{proxy.url}/myApp/nothing-here")
        info = client.get(f"{proxy.url}/myApp/whoami", headers={"Host": "my.site.com"}).json()
        outside = client.get(f"{proxy.url}/elsewhere")
    assert missing.status_code == 404 and "requested URL was not found" in missing.text  # werkzeug's
    assert info == {
        "remote_addr": "127.0.0.2",
        "scheme": "http",
        "host": "my.site.com",
        "script_root": "/myApp",
        "original_host": "my.site.com",  # HTTP_X_ORIGINAL_HOST
    }
    assert outside.status_code == 404 and "portico" in outside.text  # no route: portico's own 404
    assert "waitress" in proxy.log_text().lower()


@pytest.mark.parametrize(("name", "expected"), [
    ("apache-guide", ["ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)",
                      "--forwarded-allow-ips 127.0.0.1", "--worker-class gevent"]),
    ("iis-guide", ["DispatcherMiddleware(NotFound(), {'/myApp': app.wsgi_app})",
                   "(no x_prefix: nothing is stripped)", "--trusted-proxy 127.0.0.1"]),
])
def test_explain_prints_matching_app_settings(name: str, expected: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portico", "explain", "-c", str(REPO / "examples" / name / "portico.toml")],
        capture_output=True, text=True, timeout=30, env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 0, result.stderr
    for needle in expected:
        assert needle in result.stdout


def test_asgi_app_under_uvicorn_with_a_free_port(start_portico: StartPortico) -> None:
    proxy = start_portico(config(f"""
[[app]]
name = "api"
asgi = "asgiapp:app"
cwd = "{SUPPORT_APPS}"
workers = 1

[[route]]
path = "/api"
app = "api"
"""))
    with from_127_0_0_2() as client:
        info = client.get(f"{proxy.url}/api/items?x=1", headers={"Host": "api.example"}).json()
    # Stripped by the route, put back by uvicorn --root-path /api (docs/guide/fastapi.md).
    assert info == {"client": "127.0.0.2", "scheme": "http", "path": "/api/items", "root_path": "/api",
                    "host": "127.0.0.1:" + app_status(proxy, "api")["bind"].rsplit(":", 1)[1],
                    "prefix": "/api"}


# -- keeping apps up ------------------------------------------------------------------

def test_a_request_during_a_restart_waits_for_the_app(start_portico: StartPortico) -> None:
    proxy = start_portico(config(tiny("tiny")))
    first = httpx.get(f"{proxy.url}/tiny/")
    pid = app_status(proxy, "tiny")["pid"]
    assert first.text == f"tiny pid={pid}\n"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5, "the app to die")
    second = httpx.get(f"{proxy.url}/tiny/", timeout=10)  # arrives while it restarts
    assert second.status_code == 200
    assert second.text != first.text  # served by the new process


def test_crash_looping_app_is_marked_failed_and_others_keep_serving(start_portico: StartPortico) -> None:
    proxy = start_portico(config(
        tiny("crashy", "--die-after", "0.3", extra="max_restarts = 2\nrequest_wait = 0.5"),
        tiny("steady"),
    ))
    wait_until(lambda: app_status(proxy, "crashy")["state"] == "failed", 30, "failed state")
    crashy = app_status(proxy, "crashy")
    assert crashy["restarts"] == 2 and crashy["last_exit"] == 7 and crashy["pid"] is None
    response = httpx.get(f"{proxy.url}/crashy/", headers={"Accept": "application/json"})
    assert response.status_code == 503
    assert "'crashy' is failed" in response.json()["detail"]
    assert httpx.get(f"{proxy.url}/steady/").status_code == 200
    routes = {route["route"]: route for route in status(proxy)["routes"]}
    assert routes["/crashy"]["state"] == "failed" and routes["/steady"]["state"] == "up"
    assert "marked failed" in proxy.log_text()


def test_sigterm_stops_apps_and_leaves_no_process_behind(tmp_path: Path) -> None:
    proxy = Portico(config(demo_app(), tiny("tiny")), tmp_path)
    family: set[int] = set()
    try:
        assert httpx.get(f"{proxy.url}/myapp/").status_code == 200
        # gunicorn master + 2 workers (they boot after the master listens), tinyapp
        wait_until(lambda: len(descendants(proxy.pid)) >= 4, 10, "gunicorn's workers")
        family = descendants(proxy.pid)
        assert proxy.stop() == 0
        wait_until(lambda: not any(alive(pid) for pid in family), 5, "children to exit")
    finally:
        if proxy.proc.poll() is None:  # a failed assertion above: leave nothing running
            family |= descendants(proxy.pid)
            proxy.kill()
        kill_leftovers(family)
    assert "Worker exiting" in proxy.log_text() and "stopped" in proxy.log_text()


# -- start-up ----------------------------------------------------------------------------


def test_an_app_that_fails_to_start_stops_portico_with_its_output(tmp_path: Path) -> None:
    result = run_to_exit(tmp_path, config(tiny("tiny", "--fail-now")))
    assert result.returncode == 1
    assert "app 'tiny' did not start: exited with status 3" in result.stderr
    assert "cannot open database 'nowhere.db'" in result.stderr.split("last")[1]
    assert "listening on" not in result.stderr


def test_readiness_timeout_gives_a_clear_message(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_to_exit(tmp_path, config(tiny("tiny", "--never-listen", extra="start_timeout = 1")))
    assert result.returncode == 1
    assert "not ready after 1s (start_timeout): nothing listening" in result.stderr
    assert "tinyapp starting" in result.stderr
    assert time.monotonic() - started < 20


def test_health_path_gates_readiness(start_portico: StartPortico) -> None:
    proxy = start_portico(config(tiny("tiny", "--unhealthy-for", "1.0", extra='health = "/healthz"')))
    # Listeners open only once the health path answers 2xx: the first request is never 503.
    assert httpx.get(f"{proxy.url}/tiny/healthz").status_code == 200


def test_app_log_is_rotated_at_its_size_cap(start_portico: StartPortico, tmp_path: Path) -> None:
    proxy = start_portico(config(tiny(
        "chatty", "--spam", "300000", extra='log_max_size = "20KiB"\nlog_backups = 2')))
    assert httpx.get(f"{proxy.url}/chatty/").status_code == 200
    logs = Path(app_status(proxy, "chatty")["log"]).parent  # state/logs/portico0-HASH
    assert logs.parent == tmp_path / "state" / "logs"
    wait_until(lambda: (logs / "chatty.log.2").exists(), 10, "rotation")
    files = sorted(logs.glob("chatty.log*"))
    assert [f.name for f in files] == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(f.stat().st_size <= 20 * 1024 for f in files)


def test_status_without_a_running_portico_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "portico", "status"], capture_output=True, text=True, timeout=20,
        env={**os.environ, "PORTICO_STATE_DIR": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.returncode == 1
    assert f"no running portico: the runtime directory {tmp_path / 'run'}" in result.stderr
    assert "portico run" in result.stderr


def test_the_readme_app_config_runs(start_portico: StartPortico) -> None:
    # the README's [[app]] example with every key, moved to the apps guide
    guide = (REPO / "docs" / "guide" / "apps.md").read_text()
    blocks = [piece.split("```", 1)[0] for piece in guide.split("```toml\n")[1:]]
    text = next(block for block in blocks if "restart_window" in block)
    text = text.replace('"http://127.0.0.1:8080"', '"http://127.0.0.1:0"')
    text = text.replace('bind = "127.0.0.1:8000"', f'bind = "127.0.0.1:{free_port()}"')
    text = text.replace('cwd = "examples/apache-guide"', f'cwd = "{REPO / "examples" / "apache-guide"}"')
    proxy = start_portico(text)
    info = httpx.get(f"{proxy.url}/myapp/whoami").json()
    assert info["script_root"] == "/myapp" and info["remote_addr"] == "127.0.0.1"
    assert app_status(proxy, "myapp")["state"] == "up"


def test_a_missing_cwd_or_command_is_a_clear_start_error(tmp_path: Path) -> None:
    result = run_to_exit(tmp_path, config(tiny("tiny", extra='cwd = "no/such/dir"')))
    assert result.returncode == 1 and "is not a directory" in result.stderr
    result = run_to_exit(tmp_path, config('[[app]]\nname = "x"\ncommand = ["/no/such/binary"]\n'))
    assert result.returncode == 1 and "cannot run '/no/such/binary'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cancelled_readiness_check_leaves_no_probe_running(tmp_path: Path) -> None:
    """Ctrl-C during an app's start cancels its readiness check; the probe in flight
    (to a port that accepts and never answers) goes with it."""
    silent = ("import socket, sys, time; s = socket.socket(); "
              "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
              "print('listening', flush=True); time.sleep(3600)")
    port = free_port()
    app = AppPlan(
        name="silent", wsgi=None, asgi=None, command=["{python}", "-c", silent, "{port}"],
        server=None, workers=1, cwd=None, env={}, bind=f"127.0.0.1:{port}", health=None,
        start_timeout=30, listener_check=True, health_interval=10, health_timeout=30,
        unhealthy_after=3,
        stop_timeout=5, max_restarts=5, restart_window=60, restart_delay_max=10,
        request_wait=10, log_max_size=1 << 20, log_backups=1, root_path="",
    )

    async def scenario() -> list[str]:
        process = AppProcess(app, tmp_path, AppLog("silent", tmp_path / "silent.log", 1 << 20, 1))
        await process.spawn()
        ready = asyncio.ensure_future(process.wait_ready())
        try:
            while not any("listening" in line for line in process.log.tail):
                await asyncio.wait({ready}, timeout=0.05)
            # A probe connects and waits for an answer that never comes (health_timeout).
            done, _ = await asyncio.wait({ready}, timeout=1.0)
            assert not done
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            return [repr(task) for task in asyncio.all_tasks()
                    if task.get_coro().__name__ == "probe"  # type: ignore[union-attr]
                    and not task.done() and not task.cancelling()]
        finally:
            await process.stop(hurry=True)
            process.log.close()

    assert asyncio.run(scenario()) == []
