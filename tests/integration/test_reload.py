"""SIGHUP reloads the config file: new routes and rules at once, nothing in flight lost."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.portico_proc import Portico, StartPortico
from tests.support.procs import alive
from tests.support.recorder import Conn, Recorder
from tests.support.supervised import status, wait_until
from tests.support.tls import (
    cert_block,
    handshake,
    make,
    serial_of,
    start_with_certificate,
    tls_config,
)


class SlowGate:
    """``/slow`` requests say when they reach the upstream and wait there to be released."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()


def stage_handler(gate: SlowGate) -> Callable[[Conn], None]:
    """Answers with the X-Stage header it was sent; ``/slow`` waits for ``gate.release``."""

    def handle(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            if seen.target.startswith(b"/slow"):
                gate.arrived.set()
                gate.release.wait(10)
            stage = seen.header(b"x-stage") or b"-"
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(stage), stage))

    return handle


@pytest.fixture
def slow_gate() -> Iterator[SlowGate]:
    gate = SlowGate()
    yield gate
    gate.release.set()


@pytest.fixture
def upstream(slow_gate: SlowGate) -> Iterator[Recorder]:
    recorder = Recorder(stage_handler(slow_gate))
    yield recorder
    recorder.close()


def config(upstream: Recorder, stage: str, extra: str = "", server: str = "") -> str:
    return f"""
[server]
listen = ["http://127.0.0.1:0"]
tick = 0.1
drain_timeout = "5s"
{server}

[[route]]
path = "/a"
upstream = "{upstream.url}"
request_headers.set = {{ "X-Stage" = "{stage}" }}
{extra}
"""


def reload(proxy: Portico, text: str, expect: str) -> None:
    proxy.config_path.write_text(text)
    os.kill(proxy.pid, signal.SIGHUP)
    assert proxy.wait_for_log(expect, 15), proxy.log_text()


def test_sighup_reloads_routes_and_rules_and_requests_in_flight_finish(
    start_portico: StartPortico, upstream: Recorder, slow_gate: SlowGate
) -> None:
    proxy = start_portico(config(upstream, "one"))
    assert httpx.get(f"{proxy.url}/a/").text == "one"
    assert httpx.get(f"{proxy.url}/b/").status_code == 404

    in_flight: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: in_flight.append(
        httpx.get(f"{proxy.url}/a/slow", timeout=10)))
    slow.start()
    assert slow_gate.arrived.wait(10)  # the slow request is at the upstream now
    reload(proxy, config(upstream, "two", extra=f'\n[[route]]\npath = "/b"\nupstream = '
                         f'"{upstream.url}"\n'), "reloaded")

    assert httpx.get(f"{proxy.url}/a/").text == "two"
    assert httpx.get(f"{proxy.url}/b/").status_code == 200
    slow_gate.release.set()
    slow.join(10)
    # Served as it began, under the old config; its connection is then closed.
    assert in_flight[0].status_code == 200 and in_flight[0].text == "one"
    assert in_flight[0].headers["connection"] == "close"


def test_a_kept_alive_connection_gets_one_more_answer_then_closes(
    start_portico: StartPortico, upstream: Recorder
) -> None:
    proxy = start_portico(config(upstream, "one"))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock, \
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as idle:
        for conn in (sock, idle):
            conn.sendall(b"GET /a/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert conn.recv(65536).endswith(b"one")
        reload(proxy, config(upstream, "two"), "reloaded")
        # A client that sends its next request at once (wrk, a browser mid-page) is
        # answered under the old config with Connection: close, not cut off.
        sock.sendall(b"GET /a/ HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"one")
        assert b"\r\nConnection: close\r\n" in answer
        assert sock.recv(65536) == b""
        # One that stays idle is closed after the grace (a second), before any timeout.
        started = time.monotonic()
        assert idle.recv(65536) == b""
        assert time.monotonic() - started < 3
    assert httpx.get(f"{proxy.url}/a/").text == "two"


@pytest.mark.parametrize("hand_over", ["exec", "in-process"])
def test_a_bad_or_restart_only_change_is_refused_and_the_old_config_serves_on(
    start_portico: StartPortico, upstream: Recorder, hand_over: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # After the exec hand-over a child checks the file (config/prepare.py); without it
    # (Windows; PORTICO_NO_EXEC) the serving process does.
    if hand_over == "in-process":
        monkeypatch.setenv("PORTICO_NO_EXEC", "1")
    proxy = start_portico(config(upstream, "one"))
    reload(proxy, config(upstream, "two").replace('path = "/a"', 'path = "a"'),
           "reload refused")
    assert f"{proxy.config_path}: route[0].path" in proxy.log_text()
    assert httpx.get(f"{proxy.url}/a/").text == "one"

    reload(proxy, config(upstream, "two").replace("127.0.0.1:0", "127.0.0.1:1"),
           "server.listen: changed; this takes a restart")
    reload(proxy, config(upstream, "two", extra="\n[[route]]\npath = \"/c\"\nupstream = "
                                                 "\"https://127.0.0.1:9/\"\nca = \"nope.pem\"\n"),
           "route[1].ca")
    assert httpx.get(f"{proxy.url}/a/").text == "one"
    assert "Traceback" not in proxy.log_text()

    reload(proxy, config(upstream, "three"), "reloaded")
    assert httpx.get(f"{proxy.url}/a/").text == "three"


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_with_workers_a_reload_swaps_in_place_with_no_request_lost(
    start_portico: StartPortico, upstream: Recorder
) -> None:
    proxy = start_portico(config(upstream, "one", server="workers = 2"))
    before = [worker["pid"] for worker in status(proxy)["workers"]]
    failures: list[str] = []
    answers: set[str] = set()
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            try:
                response = httpx.get(f"{proxy.url}/a/", headers={"Connection": "close"})
                answers.add(response.text)
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
            except httpx.HTTPError as exc:
                failures.append(repr(exc))

    thread = threading.Thread(target=load)
    thread.start()
    try:
        wait_until(lambda: "one" in answers, 10, "an answer under the first config")
        reload(proxy, config(upstream, "two", server="workers = 2"), "reloaded")
        wait_until(lambda: "two" in answers, 10, "an answer under the reloaded config")
    finally:
        done.set()
        thread.join(10)
    assert not failures, failures[:5]
    assert answers == {"one", "two"}
    # The same workers serve the new config (nginx would have started new ones).
    after = status(proxy)["workers"]
    assert [worker["pid"] for worker in after] == before and all(map(alive, before))
    assert all(worker["starts"] == 1 for worker in after)
    for _ in range(4):  # every worker, whichever the kernel picks, serves the new one
        assert httpx.get(f"{proxy.url}/a/", headers={"Connection": "close"}).text == "two"


def test_a_reload_adds_a_certificate_for_a_new_name(
    start_portico: StartPortico, upstream: Recorder, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "ca"
    first, first_key = make(ca_dir, "a.test")
    second, second_key = make(ca_dir, "b.test")  # same local CA, its own files
    ca = ca_dir / "ca.pem"
    proxy = start_portico(tls_config(ca_dir, upstream.url,
                                     certs=cert_block(first, first_key, ["a.test"])))
    assert handshake(proxy.https_port, ca, "a.test")[0] == serial_of(first)
    with pytest.raises(ssl.SSLCertVerificationError):  # b.test gets a.test's certificate
        handshake(proxy.https_port, ca, "b.test")

    reload(proxy, tls_config(ca_dir, upstream.url, certs=cert_block(first, first_key, ["a.test"])
                             + cert_block(second, second_key, ["b.test"])), "reloaded")
    assert handshake(proxy.https_port, ca, "b.test") == (serial_of(second), 200)
    assert handshake(proxy.https_port, ca, "a.test") == (serial_of(first), 200)


def test_refused_reloads_leave_no_descriptor_behind(
    start_portico: StartPortico, upstream: Recorder, tmp_path: Path
) -> None:
    ca_dir = tmp_path / "ca"
    cert, key = make(ca_dir, "localhost")
    log = f'access_log = "{tmp_path / "access.log"}"'
    good = tls_config(ca_dir, upstream.url, server=log, certs=cert_block(cert, key, ["localhost"]))
    proxy = start_portico(good)
    fds = proxy.open_fds()
    # Fails after the new gateway (and its access log file) was built: the certificate.
    bad = good.replace(str(cert), str(tmp_path / "gone.pem"))
    for count in range(1, 4):  # one at a time: a SIGHUP during a check would be merged
        proxy.config_path.write_text(bad)
        os.kill(proxy.pid, signal.SIGHUP)
        wait_until(lambda count=count: proxy.log_text().count("reload refused") >= count, 15,
                   f"refusal {count}")
    assert proxy.log_text().count("reload refused") == 3
    assert "gone.pem: cannot read the certificate" in proxy.log_text()
    assert proxy.open_fds() == fds
    reload(proxy, good, "reloaded")
    assert handshake(proxy.https_port, ca_dir / "ca.pem")[1] == 200


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
def test_tls_handshakes_under_way_when_workers_reload_are_still_served(
    start_portico: StartPortico, upstream: Recorder, tmp_path: Path
) -> None:
    proxy, ca, _, _ = start_with_certificate(start_portico, tmp_path, upstream.url,
                                             server="workers = 2")
    failures: list[str] = []
    served = [0]
    done = threading.Event()

    def load() -> None:  # a new TLS connection per request: some are mid-handshake at a swap
        while not done.is_set():
            try:
                assert handshake(proxy.https_port, ca)[1] == 200
                served[0] += 1
            except (OSError, AssertionError, IndexError, ssl.SSLError) as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for count in range(1, 5):
            before = served[0]  # each reload lands on handshakes in flight
            wait_until(lambda before=before: served[0] >= before + 10, 15, "ten handshakes")
            os.kill(proxy.pid, signal.SIGHUP)
            wait_until(lambda count=count: proxy.log_text().count("reloaded") >= count, 15,
                       f"reload {count}")
        after = served[0]  # the last replaced gateways drain under load
        wait_until(lambda: served[0] >= after + 30, 15, "thirty handshakes after the reloads")
    finally:
        done.set()
        for thread in threads:
            thread.join(10)
    assert not failures, failures[:3]
    assert served[0] > 100
