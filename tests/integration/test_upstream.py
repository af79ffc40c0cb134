"""Bodies both ways, and every way an upstream can misbehave."""

from __future__ import annotations

import time
from typing import Any

from tests.conftest import proxy_config
from tests.support.client import connect, read_response, read_until_quiet, send_raw
from tests.support.recorder import Conn, Recorder

GET = b"GET /myapp/x HTTP/1.1\r\nHost: a\r\n\r\n"
GET_CLOSE = b"GET /myapp/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


def scripted(*responses: bytes, then_close: bool = False) -> Any:
    """A handler answering successive requests on a connection with fixed bytes."""
    def handler(conn: Conn) -> None:
        for response in responses:
            if conn.read_request() is None:
                return
            conn.send(response)
        if then_close:
            conn.close()
        else:
            while conn.read_request() is not None:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
    return handler


def per_connection(*handlers: Any) -> Any:
    """Connection N is served by handlers[N] (the last one serves the rest)."""
    count: list[int] = []

    def handler(conn: Conn) -> None:
        count.append(1)
        handlers[min(len(count), len(handlers)) - 1](conn)
    return handler


def proxy_for(start_portico: Any, recorder: Recorder, server: str = "", route: str = "") -> Any:
    return start_portico(proxy_config(recorder.url, route, server))


def test_204_and_304_carry_no_body(recorder: Recorder, start_portico: Any) -> None:
    recorder.reset_log(scripted(b"HTTP/1.1 204 No Content\r\n\r\n",
                                b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"))
    proxy = proxy_for(start_portico, recorder)
    with connect(proxy.port) as sock:
        sock.sendall(GET + GET + GET)
        reply = read_until_quiet(sock)
    assert reply.statuses == [204, 304, 200]
    assert reply.data.endswith(b"next")
    assert b"Transfer-Encoding" not in reply.data.split(b"next")[0].split(b"HTTP/1.1 200")[0]


def test_close_delimited_response_is_rechunked_for_http11(recorder: Recorder, start_portico: Any) -> None:
    recorder.reset_log(scripted(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close", then_close=True))
    proxy = proxy_for(start_portico, recorder)
    with connect(proxy.port) as sock:
        sock.sendall(GET)
        reply = read_until_quiet(sock)
    assert reply.header(b"transfer-encoding") == b"chunked"
    assert reply.body == b"b\r\nuntil-close\r\n0\r\n\r\n" and not reply.closed


def test_close_delimited_response_to_http10(recorder: Recorder, start_portico: Any) -> None:
    recorder.reset_log(scripted(b"HTTP/1.0 200 OK\r\n\r\nold-style", then_close=True))
    proxy = proxy_for(start_portico, recorder)
    reply = send_raw(proxy.port, b"GET /myapp/x HTTP/1.0\r\n\r\n")
    assert reply.body == b"old-style" and reply.closed
    assert reply.header(b"transfer-encoding") is None


def test_streamed_response_arrives_piece_by_piece(recorder: Recorder, start_portico: Any) -> None:
    def trickles(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"one", b"two", b"three"):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.5)
        conn.send(b"0\r\n\r\n")

    recorder.reset_log(trickles)
    proxy = proxy_for(start_portico, recorder)
    with connect(proxy.port) as sock:
        sock.sendall(GET)
        started = time.monotonic()
        sock.settimeout(5)
        first = b""
        while b"3\r\none\r\n" not in first:
            first += sock.recv(65536)
        assert time.monotonic() - started < 0.4
        assert b"two" not in first  # not buffered until the end
        rest = read_until_quiet(sock).data
        assert rest.endswith(b"5\r\nthree\r\n0\r\n\r\n")


def test_expect_100_continue(recorder: Recorder, start_portico: Any) -> None:
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


def test_body_limits_from_length_and_while_streaming(recorder: Recorder, start_portico: Any) -> None:
    proxy = proxy_for(start_portico, recorder, route="limits.max_body_size = \"1KiB\"")
    reply = send_raw(proxy.port, b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000000\r\n\r\n")
    assert reply.status == 413 and reply.closed
    assert recorder.requests == []
    body = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    reply = send_raw(proxy.port, b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert reply.status == 413 and reply.closed
    assert recorder.requests == []  # the upstream never got a complete request


