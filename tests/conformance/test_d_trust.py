"""D. Trust and rewriting (catalogue cases 39-49). The conformance portico trusts 127.0.0.2."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conformance.conftest import Gateway, H
from tests.support.client import Reply
from tests.support.recorder import Conn

GET = b"GET /myapp/ HTTP/1.1\r\n" + H


def from_address(gw: Gateway, source: str, data: bytes) -> Reply:
    return gw.send(data, quiet=0.6, source=source)


def answering(head: bytes, body: bytes = b"") -> Callable[[Conn], None]:
    def answer(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(head + body)
    return answer


def test_d39_untrusted_forwarded_for_is_replaced(gw: Gateway) -> None:
    reply = gw.send(GET + b"X-Forwarded-For: 1.2.3.4\r\n\r\n")
    assert reply.statuses == [200]
    assert gw.recorder.requests[0].headers(b"x-forwarded-for") == [b"127.0.0.1"]


def test_d39_trusted_forwarded_for_is_appended_and_merged(gw: Gateway) -> None:
    reply = from_address(gw, "127.0.0.2", GET + b"X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-For: 5.6.7.8\r\n\r\n")
    assert reply.statuses == [200]
    assert gw.recorder.requests[0].headers(b"x-forwarded-for") == [b"1.2.3.4, 5.6.7.8, 127.0.0.2"]


SPOOFED = [b"X-Forwarded-Proto: https", b"X-Forwarded-Host: evil", b"X-Forwarded-Prefix: //evil",
           b"X-Forwarded-Port: 1", b"Forwarded: for=6.6.6.6;proto=https", b"X-Real-IP: 6.6.6.6",
           b"X-Forwarded-Ssl: on", b"X-Url-Scheme: https", b"Front-End-Https: on"]


def test_d40_untrusted_forwarding_headers_are_dropped_and_portico_sets_its_own(gw: Gateway) -> None:
    reply = gw.send(GET + b"".join(line + b"\r\n" for line in SPOOFED) + b"\r\n")
    assert reply.statuses == [200]
    seen = gw.recorder.requests[0]
    assert seen.headers(b"x-forwarded-proto") == [b"http"]
    assert seen.headers(b"x-forwarded-host") == [b"a"]
    assert seen.headers(b"x-forwarded-prefix") == [b"/myapp"]
    assert seen.headers(b"x-forwarded-port") == [b"80"]
    for name in (b"forwarded", b"x-real-ip", b"x-forwarded-ssl", b"x-url-scheme", b"front-end-https"):
        assert seen.header(name) is None, name


def test_d41_encoded_crlf_in_the_target_stays_encoded(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/%0d%0aX:%20y HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [200]
    raw = bytes(gw.recorder.connections[0].received)
    assert raw.startswith(b"GET /%0d%0aX:%20y HTTP/1.1\r\n")
    assert b"\r\nX: y" not in raw


@pytest.mark.parametrize("target", [b"/myapp/../admin", b"/myapp/%2e%2e/admin", b"/myapp%2f..%2fadmin",
                                    b"/myapp/a/../../admin", b"/myapp/%00"])
def test_d42_paths_escaping_the_prefix_are_400(gw: Gateway, target: bytes) -> None:
    reply = gw.send(b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [400] and gw.upstream_saw_nothing


def test_d42_double_encoding_is_decoded_once_and_forwarded_raw(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/%252e%252e/admin HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [200]
    assert gw.recorder.requests[0].target == b"/%252e%252e/admin"


def test_d42_encoded_slash_is_forwarded_raw(gw: Gateway) -> None:
    # Catalogue: 400 for an encoded "/". Portico forwards it raw instead (issue 2: %2F
    # survives for apps that route on it); routing saw it as data, never as a separator.
    reply = gw.send(b"GET /myapp/a%2Fb HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [200] and gw.recorder.requests[0].target == b"/a%2Fb"


@pytest.mark.parametrize("target", [b"/myappfoo", b"/myapp.bak", b"/myapp;x=1/a", b"/myapp..;/admin",
                                    b"/myapp%2e/admin"])
def test_d43_d44_only_whole_segments_match(gw: Gateway, target: bytes) -> None:
    reply = gw.send(b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [404] and gw.upstream_saw_nothing


def test_d44_prefix_is_stripped_and_announced(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/x?q=1 HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [200]
    seen = gw.recorder.requests[0]
    assert seen.target == b"/x?q=1" and seen.headers(b"x-forwarded-prefix") == [b"/myapp"]


@pytest.mark.parametrize(("location", "expected"), [
    (b"http://127.0.0.1:{port}/x", b"http://a/myapp/x"),
    (b"//evil.com/x", b"//evil.com/x"),
    (b"/\\evil.com", b"/\\evil.com"),
    (b"https://evil.com/", b"https://evil.com/"),
    (b"/myapp/y", b"/myapp/y"),
])
def test_d45_location_rewrites_only_the_backend_origin(gw: Gateway, location: bytes, expected: bytes) -> None:
    location = location.replace(b"{port}", str(gw.recorder.port).encode())
    gw.recorder.reset_log(answering(b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"))
    reply = gw.send(GET + b"\r\n")
    assert reply.statuses == [302] and reply.header(b"location") == expected


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 302 Found\r\nLocation: /a\rSet-Cookie: x\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
])
def test_d46_bad_response_header_bytes_are_502(gw: Gateway, head: bytes) -> None:
    gw.recorder.reset_log(answering(head))
    reply = gw.send(GET + b"\r\n")
    assert reply.statuses == [502] and b"Set-Cookie" not in reply.head


@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
])
def test_d47_backend_framing_errors_are_502_before_any_byte(gw: Gateway, head: bytes) -> None:
    gw.recorder.reset_log(answering(head))
    reply = gw.send(GET + b"\r\n")
    assert reply.statuses == [502] and b"ok" not in reply.body


def test_d47_extra_bytes_after_the_body_are_discarded(gw: Gateway) -> None:
    gw.recorder.reset_log(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                                   b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"))
    reply = gw.send(GET + b"\r\n" + GET + b"\r\n")
    assert reply.statuses == [200, 200] and b"smuggled" not in reply.data
    assert len(gw.recorder.connections) == 2  # the upstream connection was not reused


@pytest.mark.parametrize(("request_line", "head"), [
    (b"HEAD /myapp/ HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    (b"GET /myapp/ HTTP/1.1\r\n", b"HTTP/1.1 204 No Content\r\n\r\nhello"),
])
def test_d48_bodyless_responses_carry_no_body_and_are_not_reused(gw: Gateway, request_line: bytes, head: bytes) -> None:
    gw.recorder.reset_log(answering(head))
    reply = gw.send(request_line + H + b"\r\n" + GET + b"\r\n")
    first = reply.data[: reply.data.index(b"HTTP/1.1", 1)]
    assert reply.statuses[0] in (200, 204) and b"hello" not in first
    assert len(gw.recorder.connections) == 2  # the upstream connection was not reused


def test_d49_interim_responses_reach_http11_clients_only(gw: Gateway) -> None:
    head = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    gw.recorder.reset_log(answering(head))
    reply11 = gw.send(GET + b"\r\n")
    assert reply11.statuses == [103, 200] and reply11.body.endswith(b"ok")
    gw.recorder.reset_log(answering(head))
    reply10 = gw.send(b"GET /myapp/ HTTP/1.0\r\n\r\n")
    assert reply10.statuses == [200] and b"103" not in reply10.data
