"""The Apache guide's "different host" case across real network namespaces.

Three namespaces joined by veth pairs: a client (10.77.1.2), portico
(10.77.1.1 / 10.77.2.1) and the app host (10.77.2.2), where gunicorn binds
0.0.0.0:8000 as the guide says and trusts only portico's address. Needs root
and iproute2; skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.portico_proc import Portico

REPO = Path(__file__).parents[2]
TAG = f"pc{os.getpid() % 100000}"
CLIENT, PROXY, APP = f"{TAG}-client", f"{TAG}-proxy", f"{TAG}-app"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def netns_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    probe = f"{TAG}-probe"
    try:
        sh("ip", "netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"cannot create a network namespace here: {exc.stderr.decode().strip()}"
    sh("ip", "netns", "del", probe)
    return None


@pytest.fixture(scope="module")
def hosts() -> Iterator[None]:
    reason = netns_available()
    if reason:
        pytest.skip(reason)
    try:
        for ns in (CLIENT, PROXY, APP):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for subnet, (left, right) in ((1, (PROXY, CLIENT)), (2, (PROXY, APP))):
            a, b = f"{TAG}a{subnet}", f"{TAG}b{subnet}"
            sh("ip", "link", "add", a, "netns", left, "type", "veth", "peer", "name", b, "netns", right)
            sh("ip", "-n", left, "addr", "add", f"10.77.{subnet}.1/24", "dev", a)
            sh("ip", "-n", right, "addr", "add", f"10.77.{subnet}.2/24", "dev", b)
            sh("ip", "-n", left, "link", "set", a, "up")
            sh("ip", "-n", right, "link", "set", b, "up")
        yield
    finally:
        for ns in (CLIENT, PROXY, APP):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def in_ns(ns: str) -> list[str]:
    return ["ip", "netns", "exec", ns]


def client_get(url: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    code = ("import httpx, sys, json; r = httpx.get(sys.argv[1], headers=json.loads(sys.argv[2]), "
            "timeout=10); print(r.text)")
    result = subprocess.run([*in_ns(CLIENT), sys.executable, "-c", code, url, json.dumps(headers or {})],
                            capture_output=True, text=True, timeout=30, check=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def wait_for_port(ns: str, host: str, port: int) -> None:
    code = f"import socket; socket.create_connection(({host!r}, {port}), 1).close()"
    deadline = time.monotonic() + 20
    while subprocess.run([*in_ns(ns), sys.executable, "-c", code], capture_output=True).returncode:
        assert time.monotonic() < deadline, f"nothing listening on {host}:{port} in {ns}"
        time.sleep(0.1)


def test_app_on_another_host_sees_the_real_client(hosts: None, tmp_path: Path) -> None:
    app = subprocess.Popen(
        [*in_ns(APP), sys.executable, "-m", "gunicorn", "--bind", "0.0.0.0:8000",
         "--worker-class", "gevent", "--workers", "1", "--forwarded-allow-ips", "10.77.2.1",
         "--no-control-socket", "--chdir", str(REPO / "examples" / "apache-guide"), "app:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    proxy = None
    try:
        wait_for_port(PROXY, "10.77.2.2", 8000)
        proxy = Portico("""
[server]
listen = ["http://10.77.1.1:8080"]

[[route]]
path = "/myapp"
upstream = "http://10.77.2.2:8000/"
""", tmp_path, wrapper=in_ns(PROXY))
        info = client_get(f"{proxy.url}/myapp/whoami")
        spoofed = client_get(f"{proxy.url}/myapp/whoami",
                             {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example"})
    finally:
        if proxy is not None:
            assert proxy.stop() == 0
        app.terminate()
        app.wait(15)
    assert info == {
        "remote_addr": "10.77.1.2",  # the client, not portico's 10.77.2.1
        "scheme": "http",
        "host": "10.77.1.1:8080",
        "script_root": "/myapp",
        "external_url": "http://10.77.1.1:8080/myapp/",
    }
    assert spoofed == info
    assert "Traceback" not in proxy.log_text()
