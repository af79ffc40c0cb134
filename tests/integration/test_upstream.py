"""Bodies both ways over real sockets: the smoke test of tests/inprocess/test_upstream.py,
which runs the rest of these cases in process."""

from __future__ import annotations

from tests.conftest import proxy_config
from tests.support.client import connect, read_response, read_until_quiet
from tests.support.portico_proc import Portico, StartPortico
from tests.support.recorder import Recorder

GET = b"GET /myapp/x HTTP/1.1\r\nHost: a\r\n\r\n"


def proxy_for(start_portico: StartPortico, recorder: Recorder, server: str = "", route: str = "") -> Portico:
    return start_portico(proxy_config(recorder.url, route, server))


def test_expect_100_continue(recorder: Recorder, start_portico: StartPortico) -> None:
    proxy = proxy_for(start_portico, recorder, route="limits.max_body_size = \"1KiB\"")
    with connect(proxy.port) as sock:
        sock.sendall(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        assert read_response(sock).status == 200
    assert recorder.requests[0].body == b"hello"
    assert recorder.requests[0].header(b"expect") is None  # expectations are hop-by-hop here
    with connect(proxy.port) as sock:  # too large: the final status, no 100, then close
        sock.sendall(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        reply = read_until_quiet(sock)
    assert reply.statuses == [413] and reply.closed
    assert len(recorder.requests) == 1
