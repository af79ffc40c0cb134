"""Fault injection with real servers: gunicorn and waitress killed, slowed, restarted under
load. No idempotent request whose response had not begun may fail. (A backend closing
pooled connections early: tests/inprocess/test_pool_retry.py.)"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.support.portico_proc import StartPortico
from tests.support.procs import alive, descendants
from tests.support.supervised import app_status, config, wait_until

LOAD_THREADS = 4


def demo(server: str, workers: int = 2, extra: str = "") -> str:
    return f"""
[[app]]
name = "myapp"
wsgi = "portico.demo.app:app"
server = "{server}"
workers = {workers}
bind = "127.0.0.1:{free_port()}"
{extra}

[[route]]
path = "/myapp"
app = "myapp"
"""


def hammer(url: str, threads: int, stop: threading.Event) -> tuple[Counter[int | str], list[threading.Thread]]:
    statuses: Counter[int | str] = Counter()

    def load() -> None:
        with httpx.Client(timeout=15) as client:
            while not stop.is_set():
                try:
                    statuses[client.get(url).status_code] += 1
                except httpx.TimeoutException:
                    statuses["hung"] += 1
                except httpx.HTTPError as exc:
                    statuses[f"error: {exc}"] += 1

    workers = [threading.Thread(target=load) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return statuses, workers


def answered(statuses: Counter[int | str]) -> int:
    """How many requests the load threads have had an answer to so far (read while
    they count: list() copies the values in one step)."""
    return sum(list(statuses.values()))


@pytest.mark.parametrize("server", ["gunicorn", "waitress"])
def test_app_killed_under_load_comes_back_and_no_request_fails(start_portico: StartPortico, server: str) -> None:
    proxy = start_portico(config(demo(server)))
    before = app_status(proxy, "myapp")
    old_family = {before["pid"], *descendants(before["pid"])}
    stop = threading.Event()
    statuses, workers = hammer(f"{proxy.url}/myapp/", LOAD_THREADS, stop)
    wait_until(lambda: answered(statuses) >= 50, 30, "50 answers before the kill")
    os.kill(before["pid"], signal.SIGKILL)
    wait_until(lambda: app_status(proxy, "myapp")["restarts"] == 1
               and app_status(proxy, "myapp")["state"] == "up", 30, "the restart")
    restarted = answered(statuses)
    wait_until(lambda: answered(statuses) >= restarted + 50, 30, "50 answers after the restart")
    stop.set()
    for worker in workers:
        worker.join(30)
    after = app_status(proxy, "myapp")
    assert after["pid"] != before["pid"] and after["last_exit"] == -signal.SIGKILL
    assert "hung" not in statuses, statuses
    # Bodiless GETs that met the dead app are retried after its restart, so almost none
    # fail. A response the app had begun (head forwarded, body cut) cannot be retried:
    # the client sees it cut short. At most one per client can be in flight at the kill.
    failed = sum(count for status, count in statuses.items() if status != 200)
    assert statuses[200] > 50 and failed <= LOAD_THREADS, statuses
    assert not any(alive(pid) for pid in old_family), "a process of the killed app survived"
    assert "restarting in 0.25s" in proxy.log_text()


def test_waitress_killed_mid_response_cuts_that_response_only(start_portico: StartPortico) -> None:
    proxy = start_portico(config(demo("waitress")))
    pid = app_status(proxy, "myapp")["pid"]
    with httpx.Client(timeout=10) as client, \
            client.stream("GET", f"{proxy.url}/myapp/stream?pieces=50&delay=0.1") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "piece 0"
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(httpx.RemoteProtocolError):  # cut, and said so: no hang, no fake end
            for _ in lines:
                pass
    wait_until(lambda: app_status(proxy, "myapp")["state"] == "up"
               and app_status(proxy, "myapp")["pid"] != pid, 30, "the restart")
    assert httpx.get(f"{proxy.url}/myapp/").status_code == 200


def test_a_slowed_app_times_out_alone(start_portico: StartPortico) -> None:
    proxy = start_portico(config(demo("gunicorn", extra="")).replace(
        "tick = 0.1\n", 'tick = 0.1\n\n[server.limits]\nresponse_timeout = "1s"\n'))
    results: dict[str, Any] = {}

    def slow() -> None:
        started = time.monotonic()
        response = httpx.get(f"{proxy.url}/myapp/slow?seconds=3", headers={"Accept": "application/json"})
        results["slow"] = (response.status_code, time.monotonic() - started, response.json()["detail"])

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.2)
    fast = [httpx.get(f"{proxy.url}/myapp/").status_code for _ in range(20)]
    thread.join(10)
    status, waited, detail = results["slow"]
    # Deadlines are exact to a tick (0.1 s), hence 0.8 for a 1 s response_timeout.
    assert status == 504 and 0.8 < waited < 2.5 and "did not answer in time" in detail
    assert fast == [200] * 20  # the other requests were not held up
