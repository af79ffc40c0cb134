"""What reaches the upstream, byte for byte, and what the client gets back (each case\nin process and over sockets)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import proxy_config
from tests.support.client import send_raw
from tests.support.front import Front, InProcessFront, SocketFront
from tests.support.harness import ProxyHarness
from tests.support.portico_proc import StartPortico
from tests.support.recorder import Conn, Recorder

BOTH_WAYS = pytest.mark.parametrize("proxy", ["inprocess", "socket"], indirect=True)


@pytest.fixture
def proxy(request: pytest.FixtureRequest, recorder: Recorder,
          start_portico: StartPortico) -> Iterator[Front]:
    """The portico in process, or (cases marked BOTH_WAYS, the real-socket smoke tests)
    also as a process over sockets: the same bytes, the same assertions."""
    config = proxy_config(recorder.url, 'request_headers.set = { "X-Forwarded-Prefix" = "{prefix}" }')
    if getattr(request, "param", "inprocess") == "socket":
        yield SocketFront(start_portico(config))
        return
    harness = ProxyHarness(config)
    yield InProcessFront(harness)
    harness.close()


@BOTH_WAYS
def test_prefix_is_stripped_and_the_rest_forwarded_byte_exact(proxy: Front, recorder: Recorder) -> None:
    reply = proxy.send_raw(b"GET /myapp/a%2Fb%20c/%C3%A9?x=1&y=%2F HTTP/1.1\r\nHost: my.site.com:8080\r\n"
                     b"Connection: close\r\n\r\n")
    assert reply.status == 200 and reply.body == b"ok"
    seen = recorder.requests[0]
    assert seen.request_line == b"GET /a%2Fb%20c/%C3%A9?x=1&y=%2F HTTP/1.1"
    assert seen.header(b"host") == b"127.0.0.1:%d" % recorder.port
    assert seen.header(b"x-forwarded-host") == b"my.site.com:8080"
    assert seen.header(b"x-forwarded-prefix") == b"/myapp"
    assert seen.header(b"x-forwarded-proto") == b"http"
    assert seen.header(b"x-forwarded-for") == b"127.0.0.1"
    assert seen.header(b"via") == b"1.1 portico"
    assert reply.header(b"x-request-id") == seen.header(b"x-request-id")


def test_bare_prefix_goes_as_slash(proxy: Front, recorder: Recorder) -> None:
    proxy.send_raw(b"GET /myapp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert recorder.requests[0].target == b"/"


@pytest.mark.parametrize("target", [b"/myappX", b"/myapp.bak", b"/", b"/other/myapp"])
def test_no_route_is_404_and_upstream_sees_nothing(proxy: Front, recorder: Recorder, target: bytes) -> None:
    reply = proxy.send_raw(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target)
    assert reply.status == 404
    assert b"portico" in reply.body and not reply.closed  # 404 keeps the connection
    assert recorder.requests == []


@pytest.mark.parametrize("target", [b"/myapp/../admin", b"/myapp/%2e%2e/admin", b"/myapp%2f..%2fadmin"])
def test_escaping_the_prefix_is_400(proxy: Front, recorder: Recorder, target: bytes) -> None:
    reply = proxy.send_raw(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % target)
    assert reply.status == 400 and reply.closed
    assert recorder.requests == []


def test_spoofed_forwarding_headers_are_replaced(proxy: Front, recorder: Recorder) -> None:
    proxy.send_raw(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n"
             b"X-Forwarded-Proto: https\r\nX-Forwarded-Prefix: //evil.example\r\nX-Real-IP: 6.6.6.6\r\n"
             b"Forwarded: for=6.6.6.6\r\nX_Forwarded_For: 6.6.6.6\r\nConnection: close, X-Forwarded-For\r\n\r\n")
    seen = recorder.requests[0]
    assert seen.headers(b"x-forwarded-for") == [b"127.0.0.1"]
    assert seen.headers(b"x-forwarded-proto") == [b"http"]
    assert seen.headers(b"x-forwarded-prefix") == [b"/myapp"]
    assert b"6.6.6.6" not in seen.raw
    assert seen.header(b"x_forwarded_for") is None and seen.header(b"forwarded") is None


def test_hop_by_hop_headers_never_cross(proxy: Front, recorder: Recorder) -> None:
    proxy.send_raw(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nConnection: close, X-Secret, Host, Content-Length\r\n"
             b"X-Secret: 1\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: gzip\r\nUpgrade: h2c\r\n"
             b"Proxy-Authorization: Basic eA==\r\nX-Kept: yes\r\n\r\n")
    seen = recorder.requests[0]
    for name in (b"x-secret", b"keep-alive", b"proxy-connection", b"te", b"upgrade", b"proxy-authorization",
                 b"connection"):
        assert seen.header(name) is None, name
    assert seen.header(b"x-kept") == b"yes"
    assert seen.header(b"host") is not None


@BOTH_WAYS
def test_keep_alive_and_pipelining_answer_in_order(proxy: Front, recorder: Recorder) -> None:
    def echo_target(conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            body = seen.target
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    recorder.reset_log(echo_target)
    requests = b"".join(b"GET /myapp/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5))
    with proxy.connect() as sock:
        sock.sendall(requests)
        bodies = [sock.read_response().body for _ in range(5)]
    assert bodies == [b"/%d" % i for i in range(5)]
    assert len(recorder.requests) == 5
    assert len(recorder.connections) == 1  # the upstream connection was pooled and reused


@BOTH_WAYS
def test_http10_client_gets_close_delimited_or_keepalive(proxy: Front, recorder: Recorder) -> None:
    reply = proxy.send_raw(b"GET /myapp/ HTTP/1.0\r\n\r\n")
    assert reply.data.startswith(b"HTTP/1.1 200") and reply.closed
    assert recorder.requests[0].header(b"x-forwarded-host") == b"127.0.0.1:%d" % proxy.port


def test_bodies_content_length_and_chunked_are_reframed(proxy: Front, recorder: Recorder) -> None:
    proxy.send_raw(b"POST /myapp/u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
             b"POST /myapp/c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
             b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
    first, second = recorder.requests
    assert first.body == b"hello" and first.header(b"content-length") == b"5"
    assert second.body == b"abcde" and second.header(b"transfer-encoding") == b"chunked"
    assert b"ext=1" not in recorder.connections[0].received  # extensions are dropped
    assert b"X-Trailer" not in recorder.connections[0].received


def test_post_without_body_gets_content_length_zero(proxy: Front, recorder: Recorder) -> None:
    proxy.send_raw(b"POST /myapp/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert recorder.requests[0].header(b"content-length") == b"0"


def test_json_error_page_when_asked(proxy: Front) -> None:
    reply = proxy.send_raw(b"GET /nope HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n"
                     b"Connection: close\r\n\r\n")
    assert reply.status == 404
    assert reply.header(b"content-type") == b"application/json"
    assert b'"layer": "portico"' in reply.body


def test_upstream_refused_is_502_at_once(start_portico: StartPortico) -> None:
    from tests.conftest import free_port

    proxy = start_portico(proxy_config(f"http://127.0.0.1:{free_port()}/"))
    started = time.monotonic()
    reply = send_raw(proxy.port, b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert reply.status == 502 and time.monotonic() - started < 1.5
    assert b"upstream" in reply.body and b"Traceback" not in reply.body
