"""Client-side deadlines and graceful stop, with shortened timeouts from the config."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.conftest import proxy_config
from tests.support.client import connect, read_response, read_until_quiet
from tests.support.recorder import Conn, Recorder

SHORT = """[server.limits]
head_timeout = "1s"
body_timeout = "1s"
keepalive_timeout = "1s"
"""


def test_slowloris_head_gets_408_at_the_total_deadline(recorder: Recorder, start_portico: Any) -> None:
    proxy = start_portico(proxy_config(recorder.url, server=SHORT))
    with connect(proxy.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /myapp/ HTTP/1.1\r\n")
        for _ in range(6):  # a byte every 0.3 s keeps an inactivity timer happy, not a total one
            time.sleep(0.3)
            try:
                sock.sendall(b"X")
            except OSError:
                break
        reply = read_until_quiet(sock, quiet=3)
    assert reply.status == 408 and reply.closed
    assert time.monotonic() - started < 3.5
    assert recorder.requests == []


def test_slow_body_gets_408_and_the_upstream_is_dropped(recorder: Recorder, start_portico: Any) -> None:
    proxy = start_portico(proxy_config(recorder.url, server=SHORT))
    with connect(proxy.port) as sock:
        sock.sendall(b"POST /myapp/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nabc")
        reply = read_until_quiet(sock, quiet=3)
    assert reply.status == 408 and reply.closed
    assert recorder.requests == []  # the upstream never got a whole request


def test_idle_keepalive_closes_silently(recorder: Recorder, start_portico: Any) -> None:
    proxy = start_portico(proxy_config(recorder.url, server=SHORT))
    with connect(proxy.port) as sock:
        sock.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(sock).status == 200
        started = time.monotonic()
        rest = read_until_quiet(sock, quiet=3)
    assert rest.closed and rest.data == b""  # no 408 on an idle connection
    assert 0.8 < time.monotonic() - started < 2.5


def test_sigterm_drains_in_flight_requests_and_exits_0(recorder: Recorder, start_portico: Any) -> None:
    def slow(conn: Conn) -> None:
        while conn.read_request() is not None:
            time.sleep(1)
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")

    recorder.reset_log(slow)
    proxy = start_portico(proxy_config(recorder.url))
    idle = connect(proxy.port)
    idle.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
    busy = connect(proxy.port)
    busy.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
    assert read_response(idle).body == b"slow"  # now idle, kept alive
    busy.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.3)
    result: dict[str, Any] = {}
    stopper = threading.Thread(target=lambda: result.update(code=proxy.stop()))
    stopper.start()
    assert read_response(busy).body == b"slow"  # the first one
    last = read_response(busy)
    assert last.body == b"slow" and last.header(b"connection") == b"close"
    assert read_until_quiet(idle, quiet=2).closed
    stopper.join(10)
    assert result["code"] == 0
    idle.close()
    busy.close()
