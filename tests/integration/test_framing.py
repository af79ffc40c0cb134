"""Malformed or hostile requests: 400 (or the right 4xx) and close, and the upstream sees nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import proxy_config
from tests.support.client import send_raw
from tests.support.recorder import Recorder

H = b"Host: a\r\n"
CASES = {
    "cl-te": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 400),
    "te-cl": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400),
    "two-cl": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
    "cl-hex": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 0x2\r\n\r\nxx", 400),
    "te-gzip-chunked": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400),
    "te-comma-chunked": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 400),
    "te-identity": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity\r\n\r\n", 400),
    "te-http10": (b"POST /myapp/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "bad-chunk-size": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n", 400),
    "chunk-overflow": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nx\r\n", 400),
    "chunk-lf": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n2;\nxx\r\n0\r\n\r\n", 400),
    "obs-fold": (b"GET /myapp/ HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400),
    "bare-lf": (b"GET /myapp/ HTTP/1.1\nHost: a\n\n", 400),
    "no-host": (b"GET /myapp/ HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "host-slash": (b"GET /myapp/ HTTP/1.1\r\nHost: a/x\r\n\r\n", 400),
    "space-before-colon": (b"GET /myapp/ HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n", 400),
    "cr-in-value": (b"GET /myapp/ HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    "asterisk": (b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", 400),
    "fragment": (b"GET /myapp/#frag HTTP/1.1\r\n" + H + b"\r\n", 400),
    "absolute-elsewhere": (b"GET http://evil/myapp/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    "http09": (b"GET /myapp/\r\n\r\n", 400),
    "http2-version": (b"GET /myapp/ HTTP/2.0\r\n" + H + b"\r\n", 505),
    "lowercase-method": (b"get /myapp/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    "connect": (b"CONNECT a:443 HTTP/1.1\r\n" + H + b"\r\n", 405),
    "request-line-too-long": (b"GET /myapp/" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "header-too-big": (b"GET /myapp/ HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "too-many-headers": (b"GET /myapp/ HTTP/1.1\r\n" + H + b"".join(b"X-%d: n\r\n" % i for i in range(200)) + b"\r\n", 431),
    "head-too-big": (b"GET /myapp/ HTTP/1.1\r\n" + H + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 4000) for i in range(9)) + b"\r\n", 431),
    "unknown-expect": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Expect: magic\r\nContent-Length: 1\r\n\r\nx", 417),
}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.support.portico_proc import Portico

    recorder = Recorder()
    proxy = Portico(proxy_config(recorder.url), tmp_path_factory.mktemp("framing"))
    yield proxy, recorder
    proxy.stop()
    assert "Traceback" not in proxy.log_text()
    recorder.close()


@pytest.mark.parametrize("name", sorted(CASES))
def test_rejected_with_close_and_upstream_sees_nothing(shared: Any, name: str) -> None:
    proxy, recorder = shared
    recorder.reset_log()
    data, status = CASES[name]
    reply = send_raw(proxy.port, data)
    assert reply.status == status, reply.data[:200]
    assert reply.closed
    assert recorder.requests == [] and all(not c.received for c in recorder.connections)
    assert b"Traceback" not in reply.data


def test_good_request_before_a_bad_one_is_answered_first(shared: Any) -> None:
    proxy, recorder = shared
    recorder.reset_log()
    reply = send_raw(proxy.port, b"GET /myapp/first HTTP/1.1\r\nHost: a\r\n\r\n" + CASES["cl-te"][0])
    assert reply.statuses == [200, 400] and reply.closed
    assert [r.target for r in recorder.requests] == [b"/first"]


def test_body_bytes_never_become_a_request(shared: Any) -> None:
    proxy, recorder = shared
    recorder.reset_log()
    smuggled = b"GET /myapp/admin HTTP/1.1\r\nHost: a\r\n\r\n"
    reply = send_raw(proxy.port, b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(smuggled), smuggled) + b"GET /myapp/last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert reply.statuses == [200, 200]
    assert [r.target for r in recorder.requests] == [b"/", b"/last"]
    assert recorder.requests[0].body == smuggled


def test_connection_close_then_more_bytes(shared: Any) -> None:
    proxy, recorder = shared
    recorder.reset_log()
    reply = send_raw(proxy.port, b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
                     b"GET /myapp/never HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.statuses == [200] and reply.closed
    assert [r.target for r in recorder.requests] == [b"/"]


def test_header_with_obs_text_passes_unchanged(shared: Any) -> None:
    proxy, recorder = shared
    recorder.reset_log()
    send_raw(proxy.port, b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nX-A: a\xffb\xa0\r\nConnection: close\r\n\r\n")
    assert recorder.requests[0].header(b"x-a") == b"a\xffb\xa0"
