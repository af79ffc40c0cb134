"""Bodies both ways and upstream misbehaviour, in process (from integration/test_upstream.py,
same assertions; that file keeps the real-socket smoke test)."""

from __future__ import annotations

import asyncio
import functools

from tests.conftest import proxy_config
from tests.inprocess.conftest import StartRig
from tests.support.scripted import UpstreamConn, answers

GET = b"GET /myapp/x HTTP/1.1\r\nHost: a\r\n\r\n"
LIMIT = 'limits.max_body_size = "1KiB"'


def config(route: str = "") -> functools.partial[str]:
    return functools.partial(proxy_config, extra_route=route)


def test_204_and_304_carry_no_body(rig: StartRig) -> None:
    harness, _ = rig(config(), answers(b"HTTP/1.1 204 No Content\r\n\r\n",
                                       b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
                                       rest=b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"))
    reply = harness.exchange(GET + GET + GET)
    assert reply.statuses == [204, 304, 200]
    assert reply.data.endswith(b"next")
    assert b"Transfer-Encoding" not in reply.data.split(b"next")[0].split(b"HTTP/1.1 200")[0]


def test_close_delimited_response_is_rechunked_for_http11(rig: StartRig) -> None:
    harness, _ = rig(config(), answers(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-close",
                                       then_close=True))
    reply = harness.exchange(GET)
    assert reply.header(b"transfer-encoding") == b"chunked"
    assert reply.body == b"b\r\nuntil-close\r\n0\r\n\r\n" and not reply.closed


def test_close_delimited_response_to_http10(rig: StartRig) -> None:
    harness, _ = rig(config(), answers(b"HTTP/1.0 200 OK\r\n\r\nold-style", then_close=True))
    reply = harness.exchange(b"GET /myapp/x HTTP/1.0\r\n\r\n")
    assert reply.body == b"old-style" and reply.closed
    assert reply.header(b"transfer-encoding") is None


def test_streamed_response_arrives_piece_by_piece(rig: StartRig) -> None:
    go_on = asyncio.Event()

    async def trickles(conn: UpstreamConn) -> None:
        await conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"one", b"two", b"three"):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            await go_on.wait()  # the next piece only once the test saw this one pass
            go_on.clear()
        conn.send(b"0\r\n\r\n")

    harness, _ = rig(config(), trickles)
    client = harness.client()
    client.send(GET)
    harness.run_until(lambda: b"3\r\none\r\n" in client.received)
    assert b"two" not in client.received  # not buffered until the end
    for piece in (b"3\r\ntwo\r\n", b"5\r\nthree\r\n"):
        go_on.set()
        harness.run_until(lambda piece=piece: piece in client.received)  # type: ignore[misc]
    go_on.set()
    harness.settle(client)
    assert client.received.endswith(b"5\r\nthree\r\n0\r\n\r\n")


def test_expect_100_continue(rig: StartRig) -> None:
    harness, upstream = rig(config(LIMIT))
    client = harness.client()
    client.send(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
    harness.run_until(lambda: bool(client.received))
    assert client.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    client.send(b"hello")
    harness.settle(client)
    assert client.reply().status == 200
    assert upstream.requests[0].body == b"hello"
    assert upstream.requests[0].header(b"expect") is None  # expectations are hop-by-hop here
    reply = harness.exchange(  # too large: the final status, no 100, then close
        b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
    assert reply.statuses == [413] and reply.closed
    assert len(upstream.requests) == 1


def test_body_limits_from_length_and_while_streaming(rig: StartRig) -> None:
    harness, upstream = rig(config(LIMIT))
    reply = harness.exchange(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000000\r\n\r\n")
    assert reply.status == 413 and reply.closed
    assert upstream.requests == []
    body = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"
    reply = harness.exchange(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert reply.status == 413 and reply.closed
    assert upstream.requests == []  # the upstream never got a complete request
