"""F. Backend faults and lifecycle (catalogue cases 57-65)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from tests.conformance.conftest import Gateway, H
from tests.conftest import proxy_config
from tests.support.client import connect, read_response, read_until_quiet
from tests.support.portico_proc import StartPortico
from tests.support.recorder import Conn, Recorder, answer_once

GET = b"GET /myapp/ HTTP/1.1\r\n" + H + b"\r\n"


def test_f57_refused_upstream_is_502_at_once(gw: Gateway) -> None:
    started = time.monotonic()
    reply = gw.send(b"GET /refused/ HTTP/1.1\r\n" + H + b"\r\n", quiet=0.3)
    assert reply.statuses == [502] and b"refused" in reply.body.lower()
    assert time.monotonic() - started < 0.3 + 0.5


def test_f58_blackholed_upstream_is_504_after_the_connect_timeout(sock_gw: Gateway) -> None:
    with connect(sock_gw.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /blackhole/ HTTP/1.1\r\n" + H + b"\r\n")
        reply = read_response(sock)
        waited = time.monotonic() - started
    assert reply.status == 504 and 0.9 < waited < 3


@pytest.mark.parametrize("ending", ["fin", "rst"])
def test_f61_upstream_dying_mid_body_gives_exactly_what_came(gw: Gateway, ending: str) -> None:
    def truncate(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 40010)
        time.sleep(0.2)
        conn.close() if ending == "fin" else conn.reset()

    gw.recorder.reset_log(truncate)
    reply = gw.send(GET, quiet=3)
    assert reply.statuses == [200] and reply.closed
    assert reply.header(b"content-length") == b"100000"
    assert reply.body == b"x" * 40010  # nothing appended


def test_f61_chunked_upstream_dying_gets_no_last_chunk(gw: Gateway) -> None:
    def truncate(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.2)
        conn.close()

    gw.recorder.reset_log(truncate)
    reply = gw.send(GET, quiet=3)
    assert reply.statuses == [200] and reply.closed
    assert reply.body == b"5\r\nhello\r\n" and not reply.body.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("answer", [
    b"garbage, not HTTP\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(70)) + b"\r\n",
])
def test_f62_garbage_or_an_oversized_head_is_502(gw: Gateway, answer: bytes) -> None:
    gw.recorder.reset_log(answer_once(answer))
    reply = gw.send(GET)
    assert reply.statuses == [502]


def test_f63_client_leaving_mid_upload_or_mid_response_closes_the_upstream(sock_gw: Gateway) -> None:
    closed = threading.Event()

    def upload_sink(conn: Conn) -> None:
        while conn._fill():
            pass
        closed.set()

    fds = sock_gw.process.open_fds()
    sock_gw.recorder.reset_log(upload_sink)
    with connect(sock_gw.port) as sock:
        sock.sendall(b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 500000\r\n\r\n" + b"x" * 1000)
        sock_gw.recorder.wait_until(lambda: bool(sock_gw.recorder.connections) and bytes(
        sock_gw.recorder.connections[0].received)
                                    .endswith(b"x" * 1000), "the upload's start upstream")
    assert closed.wait(3), "mid-upload: the upstream connection was kept"

    cut = threading.Event()

    def endless(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        try:
            while True:
                conn.sock.sendall(b"x" * 65536)
        except OSError:
            cut.set()

    sock_gw.recorder.reset_log(endless)
    with connect(sock_gw.port) as sock:
        sock.sendall(GET)
        sock.recv(65536)
    assert cut.wait(3), "mid-response: the upstream connection was kept"
    time.sleep(0.3)
    assert sock_gw.process.open_fds() <= fds  # nothing leaked


def test_f64_sigterm_finishes_in_flight_work_and_closes_idle_connections(
    recorder: Recorder, start_portico: StartPortico
) -> None:
    def slow(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            if seen.target == b"/slow":
                time.sleep(1.0)
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")

    recorder.reset_log(slow)
    proxy = start_portico(proxy_config(recorder.url))
    idle = connect(proxy.port)
    idle.sendall(GET)
    assert read_response(idle).status == 200
    slow_client = connect(proxy.port)
    slow_client.sendall(b"GET /myapp/slow HTTP/1.1\r\n" + H + b"\r\n")
    upload = connect(proxy.port)
    upload.sendall(b"POST /myapp/up HTTP/1.1\r\n" + H + b"Content-Length: 10\r\n\r\n12345")
    recorder.wait_until(lambda: any(r.target == b"/slow" for r in recorder.requests) and any(
        bytes(c.received).endswith(b"12345") for c in recorder.connections),
        "the slow request and the upload's first half upstream")
    os.kill(proxy.pid, signal.SIGTERM)
    time.sleep(0.3)
    upload.sendall(b"67890")
    slow_reply = read_until_quiet(slow_client, quiet=3)
    upload_reply = read_until_quiet(upload, quiet=3)
    idle_reply = read_until_quiet(idle, quiet=3)
    for sock in (idle, slow_client, upload):
        sock.close()
    assert slow_reply.statuses == [200] and slow_reply.body == b"done" and slow_reply.closed
    assert slow_reply.header(b"connection") == b"close"
    assert upload_reply.statuses == [200] and upload_reply.closed
    assert idle_reply.closed and idle_reply.data == b""
    assert recorder.requests[-1].body == b"1234567890"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=2).close()
    assert proxy.proc.wait(10) == 0


def test_f65_a_thousand_slow_uploads_keep_memory_bounded(sock_gw: Gateway) -> None:
    def sink(conn: Conn) -> None:
        while conn._fill():
            conn.buffer = b""

    sock_gw.recorder.reset_log(sink)
    rss_before = sock_gw.process.status_kib("VmRSS")
    clients: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:  # a byte each per 0.3 s: slow, but inside the 1 s body timeout
        while not stop.wait(0.3):
            for sock in list(clients):
                sock.send(b"x")

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", sock_gw.port), timeout=10)
            sock.sendall(b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 1000000\r\n\r\n" + b"x" * 16384)
            clients.append(sock)
        # Every upload reaches its upstream once portico has read its head: await that
        # (fds of both sides) rather than a fixed pause that a busy machine outruns.
        deadline = time.monotonic() + 15
        while (open_fds := sock_gw.process.open_fds()) < 2000 and time.monotonic() < deadline:
            time.sleep(0.1)
        growth_mib = (sock_gw.process.status_kib("VmRSS") - rss_before) / 1024
    finally:
        stop.set()
        trickler.join()
        for sock in clients:
            sock.close()
    print(f"F65: 1,000 slow uploads: RSS +{growth_mib:.1f} MiB, {open_fds} fds")
    assert open_fds >= 2000  # all 1,000 uploads were in flight, each with its upstream
    # The bound: every upload streams (16 KiB in flight each, at most 64 KiB buffered
    # before its upstream connects), so 1,000 of them cost well under 64 MiB.
    assert growth_mib < 64, growth_mib
