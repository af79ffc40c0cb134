"""Edges from the core issue not covered elsewhere: the JSON access log (the upload abort and
the last keep-alive request: tests/inprocess/test_edges.py)."""

from __future__ import annotations

import json

from tests.conftest import proxy_config
from tests.support.client import connect, read_response
from tests.support.portico_proc import StartPortico
from tests.support.recorder import Recorder


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
