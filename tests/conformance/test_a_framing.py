"""A. Framing and smuggling (catalogue cases 1-20)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.conformance.conftest import Gateway, H
from tests.support.client import connect, read_response, read_until_quiet
from tests.support.recorder import Conn

POST = b"POST /myapp/ HTTP/1.1\r\n" + H
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"

# Refused with 400 and a close; the upstream sees nothing.
REJECTED = {
    "A01-cl-te": POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
    "A02-te-cl": POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
    "A03-two-cl": POST + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    "A03-same-cl-twice": POST + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nxx",
    "A03-cl-list": POST + b"Content-Length: 2, 2\r\n\r\nxx",
    **{f"A04-cl-{name}": POST + b"Content-Length: " + value + b"\r\n\r\nxx"
       for name, value in [("plus", b"+2"), ("hex", b"0x2"), ("minus", b"-1"), ("empty", b""),
                           ("underscore", b"1_0"), ("space", b"2 2")]},
    **{f"A05-te-{name}": POST + header + b"\r\n0\r\n\r\n"
       for name, header in [
           ("xchunked", b"Transfer-Encoding: xchunked\r\n"),
           ("identity", b"Transfer-Encoding: identity\r\n"),
           ("chunked-twice", b"Transfer-Encoding: chunked, chunked\r\n"),
           ("chunked-gzip", b"Transfer-Encoding: chunked, gzip\r\n"),
           ("space-colon", b"Transfer-Encoding : chunked\r\n"),
           ("vtab", b"Transfer-Encoding:\x0bchunked\r\n"),
           ("folded", b"Transfer-Encoding:\r\n chunked\r\n"),
       ]},
    "A06-gzip-chunked": POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    # Catalogue: forward a regenerated framing. Portico refuses outright: simpler, and safe.
    "A07-comma-chunked": POST + b"Transfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n",
    "A08-te-http10": b"POST /myapp/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    **{f"A10-ext-{name}": CHUNKED + size + b"xx\r\n0\r\n\r\n"
       for name, size in [("lf", b"2;\n"), ("cr", b"2;\r"), ("cr-x", b"2;\rX\r\n"), ("cr-cr", b"2\r\r\n")]},
    "A11-chunk-spill": CHUNKED + b"2\r\nxxx\r\n0\r\n\r\n",
    **{f"A12-size-{name}": CHUNKED + size + b"\r\nxx\r\n0\r\n\r\n"
       for name, size in [("hex-prefix", b"0x2"), ("trailing-space", b"2 "), ("leading-space", b" 2"),
                          ("overflow", b"FFFFFFFFFFFFFFFFF1")]},
    "A13-bare-lf-head": b"GET /myapp/ HTTP/1.1\nHost: a\n\n",
    "A13-bare-lf-last-chunk": CHUNKED + b"2\r\nxx\r\n0\n\r\n",
    "A14-trailer-bare-lf": CHUNKED + b"0\r\nX: y\n\r\n",
    # Catalogue: drop all trailers. A trailer naming framing or Host is refused instead.
    "A14-trailer-framing": CHUNKED + b"2\r\nxx\r\n0\r\nContent-Length: 5\r\nHost: evil\r\n\r\n",
    "A20-http09": b"GET /myapp/\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_with_close_and_nothing_forwarded(gw: Gateway, name: str) -> None:
    reply = gw.assert_rejected(REJECTED[name], 400)
    assert reply.header(b"connection") == b"close"


def test_a09_get_with_a_body_is_forwarded_with_its_length(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    assert reply.statuses == [200] and not reply.closed
    [seen] = gw.recorder.requests  # "hello" never became a second request
    assert seen.header(b"content-length") == b"5" and seen.body == b"hello"


@pytest.mark.parametrize("field", [b"Authorization: Basic eDp5", b"Cookie: a=b", b"X-Forwarded-For: 1.2.3.4",
                                   b"Connection: close", b"Forwarded: for=1.2.3.4", b"Expect: 100-continue",
                                   b"Content-Type: text/evil", b"X-Request-ID: evil"])
def test_a14_routing_framing_and_auth_fields_never_come_from_a_trailer(gw: Gateway, field: bytes) -> None:
    reply = gw.send(CHUNKED + b"2\r\nxx\r\n0\r\n" + field + b"\r\n\r\n")
    assert reply.statuses in ([200], [400])
    received = b"".join(bytes(c.received) for c in gw.recorder.connections)
    assert field not in received and field.split(b":")[1] not in received


@pytest.mark.parametrize("field", [b"Set-Cookie: evil=1", b"Content-Length: 99", b"Location: /evil"])
def test_a14_response_trailers_never_reach_the_client(gw: Gateway, field: bytes) -> None:
    def answer(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n" + field + b"\r\n\r\n")

    gw.recorder.reset_log(answer)
    reply = gw.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.statuses == [200] and field.split(b": ")[1] not in reply.data
    if not field.startswith(b"Content-Length"):  # llhttp refuses that one: the body is cut
        assert reply.data.endswith(b"ok\r\n0\r\n\r\n")


@pytest.mark.parametrize("ending", [b"0\r\n", b"0\r\nX-T: 1\r\n", b"2\r\nxx\r\n0\r\n"],
                         ids=["last-chunk", "trailer", "after-data"])
def test_a13_chunked_body_without_its_final_crlf_is_400_and_nothing_is_reused(
        gw: Gateway, ending: bytes) -> None:
    # The client half-closes after a chunked body that lacks its final CRLF: the body can
    # never end, so the upstream connection (it may have the start) is discarded and the
    # client gets 400 (no response had started).
    if gw.harness is not None:
        client = gw.harness.client()
        client.send(CHUNKED + ending)
        client.eof()
        gw.harness.settle(client)
        reply = client.reply()
        client.disconnect()
    else:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
            sock.sendall(CHUNKED + ending)
            sock.shutdown(socket.SHUT_WR)
            reply = read_until_quiet(sock)
    assert reply.statuses == [400] and reply.closed
    assert not gw.recorder.requests  # the upstream never saw a whole request


def test_a14_plain_trailers_are_dropped(gw: Gateway) -> None:
    reply = gw.send(CHUNKED + b"2\r\nxx\r\n0\r\nX-Trailer: y\r\n\r\n")
    assert reply.statuses == [200]
    [seen] = gw.recorder.requests
    assert seen.body == b"xx"
    assert b"X-Trailer" not in bytes(gw.recorder.connections[0].received)


def test_a15_two_pipelined_requests_in_one_segment(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/1 HTTP/1.1\r\nHost: a\r\n\r\nGET /myapp/2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.statuses == [200, 200] and not reply.closed
    assert [r.target for r in gw.recorder.requests] == [b"/1", b"/2"]


def test_a15_body_bytes_never_become_a_request(gw: Gateway) -> None:
    inner = b"GET /myapp/smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    reply = gw.send(POST + b"Content-Length: %d\r\n\r\n" % len(inner) + inner)
    assert reply.statuses == [200]
    [seen] = gw.recorder.requests
    assert seen.body == inner


def test_a16_connection_close_then_more_bytes(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /myapp/2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.statuses == [200] and reply.closed
    assert [r.target for r in gw.recorder.requests] == [b"/1"]


def test_a17_upgrade_is_forwarded_and_a_refusal_relayed_then_closed(gw: Gateway) -> None:
    # WebSocket is allowed by default (limits.upgrades): the upstream decides. It answers 200,
    # not 101: that answer is relayed, and the raw bytes after the head never become a
    # request (they are closed with the connection: never parsed as HTTP).
    reply = gw.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello")
    assert reply.statuses == [200] and reply.closed
    assert reply.header(b"connection") == b"close"
    [seen] = gw.recorder.requests
    assert seen.header(b"upgrade") == b"websocket" and seen.header(b"connection") == b"Upgrade"


def test_a17_h2c_upgrade_is_stripped(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
    assert reply.statuses == [200]
    [seen] = gw.recorder.requests
    assert seen.header(b"upgrade") is None and seen.header(b"http2-settings") is None


@pytest.mark.parametrize("after", [b"", b"GET /myapp/2 HTTP/1.1\r\nHost: a\r\n\r\n", b"\x81\x05hello"],
                         ids=["nothing", "a-request", "frame"])
def test_a17_upgrade_with_a_body_then_more_bytes_is_always_answered(gw: Gateway, after: bytes) -> None:
    # llhttp ends an upgrade request at its head: the body must still be read as the body,
    # and whatever follows must neither hang the connection nor become a request.
    reply = gw.send(POST + b"Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello" + after)
    assert reply.statuses == [200] and reply.closed
    [seen] = gw.recorder.requests
    assert seen.body == b"hello"


def test_a17_upgrade_with_a_chunked_body_is_refused(gw: Gateway) -> None:
    gw.assert_rejected(CHUNKED.replace(b"Transfer", b"Connection: Upgrade\r\nUpgrade: websocket\r\nTransfer")
                       + b"5\r\nhello\r\n0\r\n\r\nmore", 400)


def test_a18_expect_with_a_too_large_body_gets_413_without_100(gw: Gateway) -> None:
    reply = gw.send(POST + b"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n")
    assert reply.statuses == [413] and reply.closed
    assert b"100 Continue" not in reply.data and gw.upstream_saw_nothing


def test_a18_expect_on_http10_gets_no_interim_response(gw: Gateway) -> None:
    reply = gw.send(b"POST /myapp/ HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nxx")
    assert reply.statuses == [200] and b"100 Continue" not in reply.data


def test_a18_unknown_expectation_is_417(gw: Gateway) -> None:
    reply = gw.send(POST + b"Expect: magic\r\nContent-Length: 1\r\n\r\nx")
    assert reply.statuses == [417] and reply.closed and gw.upstream_saw_nothing


def test_a19_early_answer_with_unread_body_closes_the_client(sock_gw: Gateway) -> None:
    def early(conn: Conn) -> None:
        conn.sock.recv(65536)  # the head and a little of the body
        conn.send(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.5)

    sock_gw.recorder.reset_log(early)
    with connect(sock_gw.port) as sock:
        sock.sendall(POST + b"Content-Length: 500000\r\n\r\n" + b"x" * 1000)
        reply = read_response(sock)
        assert reply.status == 413 and reply.header(b"connection") == b"close"
        assert read_until_quiet(sock, quiet=2).closed


def test_a20_http2_version_over_http1_is_505(gw: Gateway) -> None:
    reply = gw.send(b"GET /myapp/ HTTP/2.0\r\n" + H + b"\r\n")
    assert reply.statuses == [505] and reply.closed and gw.upstream_saw_nothing


def test_a11_spill_after_streaming_began_closes_the_upstream(sock_gw: Gateway) -> None:
    upstream_closed = threading.Event()

    def sink(conn: Conn) -> None:
        while conn._fill():
            pass
        upstream_closed.set()

    sock_gw.recorder.reset_log(sink)
    with connect(sock_gw.port) as sock:
        sock.sendall(CHUNKED + b"2\r\nxx\r\n")
        sock_gw.recorder.wait_until(lambda: bool(sock_gw.recorder.connections) and bytes(
        sock_gw.recorder.connections[0].received)
                                    .endswith(b"2\r\nxx\r\n"), "the first chunk upstream")
        sock.sendall(b"2\r\nxxxx\r\n0\r\n\r\n")  # a chunk longer than it says
        reply = read_until_quiet(sock)
    assert reply.statuses == [400] and reply.closed
    assert upstream_closed.wait(3), "the upstream connection was kept"
    assert bytes(sock_gw.recorder.connections[0].received).endswith(b"2\r\nxx\r\n")  # nothing after
