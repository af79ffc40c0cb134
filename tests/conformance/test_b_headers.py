"""B. Header syntax (catalogue cases 21-30)."""

from __future__ import annotations

import time

import pytest

from tests.conformance.conftest import Gateway, H
from tests.support.client import connect, read_until_quiet
from tests.support.recorder import Conn, answer_once

GET = b"GET /myapp/ HTTP/1.1\r\n" + H

REJECTED = {
    "B21-space-before-colon": (GET + b"Transfer-Encoding : chunked\r\n\r\n", 400),
    "B22-obs-fold": (GET + b"X-A: a\r\n b\r\n\r\n", 400),
    **{f"B23-{name}": (GET + b"X-A: " + value + b"\r\n\r\n", 400)
       for name, value in [("cr", b"a\rb"), ("nul", b"a\x00b"), ("soh", b"a\x01b"), ("del", b"a\x7fb")]},
    "B25-empty-name": (b"GET /myapp/ HTTP/1.1\r\n: x\r\n" + H + b"\r\n", 400),
    "B25-space-in-name": (b"GET /myapp/ HTTP/1.1\r\nFoo bar: x\r\n" + H + b"\r\n", 400),
    "B25-leading-space": (b"GET /myapp/ HTTP/1.1\r\n Host: a\r\n" + H + b"\r\n", 400),
    "B27-one-big-header": (GET + b"X-Big: " + b"a" * 65536 + b"\r\n\r\n", 431),
    "B28-200-headers": (GET + b"".join(b"X-%d: n\r\n" % i for i in range(200)) + b"\r\n", 431),
    "B28-head-too-big": (GET + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 4000) for i in range(9)) + b"\r\n", 431),
    # Duplicate singleton fields: refused, never one of them picked (issue 17's external corpus).
    "B32-two-content-types": (GET + b"Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\n", 400),
    "B32-two-authorizations": (GET + b"Authorization: Basic YTpi\r\nauthorization: Basic Yzpk\r\n\r\n", 400),
    "B32-two-different-lengths": (b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc", 400),
    "B32-two-upgrades": (GET + b"Connection: Upgrade\r\nUpgrade: websocket\r\nUpgrade: h2c\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_with_close_and_nothing_forwarded(gw: Gateway, name: str) -> None:
    gw.assert_rejected(*REJECTED[name])


def test_b22_obs_fold_in_a_response_is_502(gw: Gateway) -> None:
    gw.recorder.reset_log(answer_once(
        b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok"))
    reply = gw.send(GET + b"\r\n")
    assert reply.statuses == [502] and b"ok" not in reply.body


def test_b24_obs_text_is_forwarded_byte_exact(gw: Gateway) -> None:
    reply = gw.send(GET + b"X-A: a\xffb\xa0c\x85\r\n\r\n")
    assert reply.statuses == [200]
    assert gw.recorder.requests[0].header(b"x-a") == b"a\xffb\xa0c\x85"


def test_b26_underscore_names_never_reach_the_app(gw: Gateway) -> None:
    reply = gw.send(GET + b"X_Forwarded_For: 1.2.3.4\r\nScript_Name: /admin\r\nX-Ok: 1\r\n\r\n")
    assert reply.statuses == [200]
    seen = gw.recorder.requests[0]
    assert seen.header(b"x_forwarded_for") is None and seen.header(b"script_name") is None
    assert seen.header(b"x-ok") == b"1" and seen.header(b"x-forwarded-for") == b"127.0.0.1"


def test_b27_a_64k_header_sent_slowly_is_431_before_it_ends(sock_gw: Gateway) -> None:
    # Every read counts toward the head bound (request line + head limit + 1 KiB), so a
    # header that never ends is refused at ~41 KiB, not when it completes.
    with connect(sock_gw.port) as sock:
        sock.sendall(GET + b"X-Big: ")
        try:
            for _ in range(64):
                sock.sendall(b"a" * 1024)
                time.sleep(0.005)
        except OSError:
            pass  # closed on us mid-header, as it should be
        reply = read_until_quiet(sock)
    assert reply.statuses == [431] and reply.closed and sock_gw.upstream_saw_nothing


def test_b29_hop_by_hop_headers_never_cross_either_way(gw: Gateway) -> None:
    def answer(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: X-Resp-Secret\r\nX-Resp-Secret: 1\r\n"
                  b"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: foo\r\n"
                  b"Content-Length: 2\r\n\r\nok")

    gw.recorder.reset_log(answer)
    reply = gw.send(GET + b"Connection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                    b"Proxy-Connection: x\r\nTE: gzip\r\nUpgrade: foo\r\n\r\n")
    seen = gw.recorder.requests[0]
    for name in (b"x-secret", b"keep-alive", b"proxy-connection", b"te", b"upgrade", b"connection"):
        assert seen.header(name) is None, name
    assert seen.header(b"via") == b"1.1 portico"
    for name in (b"x-resp-secret", b"keep-alive", b"proxy-connection", b"upgrade"):
        assert reply.header(name) is None, name
    assert reply.header(b"via") == b"1.1 portico"


def test_b30_connection_cannot_remove_framing_or_forwarding(gw: Gateway) -> None:
    reply = gw.send(b"POST /myapp/ HTTP/1.1\r\nHost: a\r\n"
                    b"Connection: X-Forwarded-For, X-Forwarded-Host, Host, Content-Length\r\n"
                    b"X-Forwarded-For: 6.6.6.6\r\nContent-Length: 2\r\n\r\nxx")
    assert reply.statuses == [200]
    seen = gw.recorder.requests[0]
    assert seen.header(b"x-forwarded-for") == b"127.0.0.1"
    assert seen.header(b"x-forwarded-host") == b"a"
    assert seen.header(b"host") is not None and seen.header(b"content-length") == b"2"
    assert seen.body == b"xx"
