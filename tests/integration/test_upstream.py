"""Bodies both ways, and every way an upstream can misbehave."""

from __future__ import annotations

import socket
import threading
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


def test_head_response_with_a_body_is_cut_and_the_connection_not_reused(
    recorder: Recorder, start_portico: Any
) -> None:
    recorder.reset_log(per_connection(scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                                      scripted()))
    proxy = proxy_for(start_portico, recorder)
    with connect(proxy.port) as sock:
        sock.sendall(b"HEAD /myapp/x HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)
        sock.sendall(GET)
        reply = read_until_quiet(sock)
    first, _, rest = reply.data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and b"Content-Length: 5" in first
    assert rest.startswith(b"HTTP/1.1 200") and rest.endswith(b"next")  # "hello" never leaked
    assert len(recorder.connections) == 2


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


def test_upstream_dying_mid_body_gives_exactly_what_came_then_close(
    recorder: Recorder, start_portico: Any
) -> None:
    def dies(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 40010)
        time.sleep(0.2)
        conn.close()

    recorder.reset_log(dies)
    proxy = proxy_for(start_portico, recorder)
    reply = send_raw(proxy.port, GET)
    assert reply.closed and len(reply.body) == 40010


def test_chunked_upstream_dying_never_gets_a_last_chunk(recorder: Recorder, start_portico: Any) -> None:
    def dies(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.2)
        conn.reset()

    recorder.reset_log(dies)
    proxy = proxy_for(start_portico, recorder)
    reply = send_raw(proxy.port, GET)
    assert reply.closed
    assert reply.body == b"5\r\nhello\r\n"  # no 0\r\n\r\n: the client can tell it is truncated


def test_interim_responses_go_to_http11_clients_only(recorder: Recorder, start_portico: Any) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
    recorder.reset_log(scripted(early + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                                early + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    proxy = proxy_for(start_portico, recorder)
    assert send_raw(proxy.port, GET_CLOSE).statuses == [103, 200]
    assert send_raw(proxy.port, b"GET /myapp/x HTTP/1.0\r\n\r\n").statuses == [200]


def test_upstream_garbage_and_bad_framing_are_502(recorder: Recorder, start_portico: Any) -> None:
    for bad in (b"garbage\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
                b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
                b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n"):
        recorder.reset_log(scripted(bad))
        proxy = proxy_for(start_portico, recorder)
        reply = send_raw(proxy.port, GET_CLOSE)
        assert reply.status == 502, bad[:40]
        assert reply.header(b"x-portico-error") == b"upstream"
        proxy.stop()


def test_extra_bytes_after_the_body_mean_no_reuse(recorder: Recorder, start_portico: Any) -> None:
    recorder.reset_log(per_connection(
        scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"
                 b"Content-Length: 8\r\n\r\nsmuggled"),
        scripted()))
    proxy = proxy_for(start_portico, recorder)
    with connect(proxy.port) as sock:
        sock.sendall(GET)
        assert read_response(sock).body == b"ok"
        sock.sendall(GET)
        assert read_response(sock).body == b"next"
    assert len(recorder.connections) == 2


def test_stale_pooled_connection_is_retried_for_get_only(recorder: Recorder, start_portico: Any) -> None:
    served: list[int] = []

    def closes_second(conn: Conn) -> None:
        index = len(served)
        served.append(index)
        if conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst" if index == 0 else
                  b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
        if index == 0:
            conn.read_request()  # takes the next request, then closes without a byte
            conn.close()

    recorder.reset_log(closes_second)
    proxy = proxy_for(start_portico, recorder, server="[server.pool]\nidle_timeout = 30")
    with connect(proxy.port) as sock:
        sock.sendall(GET)
        assert read_response(sock).body == b"first"
        sock.sendall(GET)
        assert read_response(sock).body == b"fresh"  # retried once on a new connection
    served.clear()
    recorder.reset_log(closes_second)
    with connect(proxy.port) as sock:
        sock.sendall(GET)
        assert read_response(sock).body == b"first"
        sock.sendall(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
        assert read_response(sock).status == 502  # never retried: not idempotent


def test_upstream_stall_is_504(recorder: Recorder, start_portico: Any) -> None:
    def stalls(conn: Conn) -> None:
        conn.read_request()
        time.sleep(5)

    recorder.reset_log(stalls)
    proxy = proxy_for(start_portico, recorder, server="[server.limits]\nresponse_timeout = \"1s\"")
    with connect(proxy.port) as sock:
        started = time.monotonic()
        sock.sendall(GET)
        reply = read_response(sock)
        waited = time.monotonic() - started
    assert reply.status == 504 and 0.9 < waited < 2.5
    assert reply.header(b"x-portico-error") == b"upstream"


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


def test_early_upstream_answer_closes_the_client(recorder: Recorder, start_portico: Any) -> None:
    def refuses(conn: Conn) -> None:
        while b"\r\n\r\n" not in conn.buffer:
            conn._fill()
        conn.send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        time.sleep(1)

    recorder.reset_log(refuses)
    proxy = proxy_for(start_portico, recorder)
    with connect(proxy.port) as sock:
        sock.sendall(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        reply = read_until_quiet(sock, quiet=2)
    assert reply.status == 401 and reply.closed
    assert reply.header(b"connection") == b"close"


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


def test_client_leaving_mid_download_closes_the_upstream(recorder: Recorder, start_portico: Any) -> None:
    upstream_saw_close = threading.Event()

    def endless(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        try:
            for _ in range(100000):
                conn.send(b"x" * 65536)
        except OSError:
            upstream_saw_close.set()

    recorder.reset_log(endless)
    proxy = proxy_for(start_portico, recorder)
    sock = connect(proxy.port)
    sock.sendall(GET)
    sock.recv(65536)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    assert upstream_saw_close.wait(10)
    fds_after = proxy.open_fds()
    time.sleep(0.3)
    assert proxy.open_fds() <= fds_after
