"""``/metrics`` on a real portico with ``workers = 2``: the counts of every worker are
summed exactly, survive a worker's SIGKILL and restart, and promtool accepts them."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, proxy_config
from tests.support.portico_proc import StartPortico
from tests.support.procs import alive, descendants
from tests.support.recorder import Recorder
from tests.support.supervised import wait_until


def scrape(url: str) -> bytes:
    host, _, port = url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/plain; version=0.0.4")
    body = response.read()
    conn.close()
    return body


def requests_total(text: bytes) -> float:
    return sum(sample.value for family in text_string_to_metric_families(text.decode())
               for sample in family.samples if sample.name == "portico_requests_total")


def send(port: int, count: int) -> None:
    for start in range(0, count, 50):  # several connections, kept alive
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(min(50, count - start)):
            conn.request("GET", "/up/x")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
        conn.close()


def test_counts_summed_over_workers_and_kept_across_a_worker_restart(
    recorder: Recorder, start_portico: StartPortico
) -> None:
    metrics_url = f"http://127.0.0.1:{free_port()}"
    proxy = start_portico(
        proxy_config(recorder.url, server=(
            'workers = 2\naccess_log = "off"\n[metrics]\nenabled = true\n'
            f'listen = "{metrics_url.removeprefix("http://")}"\n')).replace("/myapp", "/up"))
    send(proxy.port, 300)
    wait_until(lambda: requests_total(scrape(metrics_url)) == 300, 10, "300 counted")
    killed = min(descendants(proxy.pid))
    os.kill(killed, signal.SIGKILL)

    def started_again() -> bool:
        workers = {pid for pid in descendants(proxy.pid) if alive(pid)}
        return killed not in workers and len(workers) == 2 and \
            b"portico_workers 2.0" in scrape(metrics_url)

    wait_until(started_again, 15, "the worker started again")
    assert requests_total(scrape(metrics_url)) == 300  # never decreases
    send(proxy.port, 200)
    wait_until(lambda: requests_total(scrape(metrics_url)) == 500, 10, "500 counted")
    text = scrape(metrics_url)
    assert b"portico_workers 2.0" in text
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian prometheus) is not installed: make metrics-deps")
    checked = subprocess.run(["promtool", "check", "metrics"], input=text,
                             capture_output=True, timeout=30)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")
