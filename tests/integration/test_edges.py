"""Edges from the core issue not covered elsewhere: upload abort, JSON log, the last keep-alive request."""

from __future__ import annotations

import json
import threading
import time

from tests.conftest import proxy_config
from tests.support.client import connect, read_response
from tests.support.portico_proc import StartPortico
from tests.support.recorder import Conn, Recorder


def test_client_leaving_mid_upload_closes_the_upstream(recorder: Recorder, start_portico: StartPortico) -> None:
    upstream_saw_eof = threading.Event()

    def slow_sink(conn: Conn) -> None:
        while True:
            try:
                data = conn.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
        upstream_saw_eof.set()

    recorder.reset_log(slow_sink)
    proxy = start_portico(proxy_config(recorder.url, 'limits.max_body_size = "1GiB"'))
    sock = connect(proxy.port)
    sock.sendall(b"POST /myapp/up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 200000)
    time.sleep(0.3)
    sock.close()
    assert upstream_saw_eof.wait(5)


def test_json_access_log(recorder: Recorder, start_portico: StartPortico) -> None:
    proxy = start_portico(proxy_config(recorder.url, server='log_format = "json"'))
    with connect(proxy.port) as sock:
        sock.sendall(b"GET /myapp/x?q=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: t\"est\r\nX-Request-ID: r-1\r\n\r\n")
        assert read_response(sock).status == 200
    assert proxy.wait_for_log('"request_id": "r-1"')
    line = next(line for line in proxy.stdout_lines if '"r-1"' in line)
    entry = json.loads(line)
    assert entry["target"] == "/myapp/x?q=1" and entry["status"] == 200
    assert entry["route"] == "/myapp" and entry["user_agent"] == 't"est'
    assert entry["upstream"] == f"127.0.0.1:{recorder.port}"


def test_last_keepalive_request_is_answered_with_connection_close(recorder: Recorder, start_portico: StartPortico) -> None:
    # The connection's last response must say so, or a client that already sent the
    # next request on it sees a reset (found under load in the supervisor tests).
    proxy = start_portico(proxy_config(recorder.url, server="[server.limits]\nmax_keepalive_requests = 3"))
    with connect(proxy.port) as sock:
        replies = []
        for _ in range(3):
            sock.sendall(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
            replies.append(read_response(sock))
        assert [r.status for r in replies] == [200, 200, 200]
        assert [r.header(b"connection") for r in replies] == [None, None, b"close"]
        sock.settimeout(5)
        assert sock.recv(1) == b""  # and then it closes
