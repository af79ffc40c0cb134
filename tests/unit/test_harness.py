"""The in-process harness itself: what its fakes promise the tests built on them."""

from __future__ import annotations

import asyncio

from tests.conftest import proxy_config
from tests.support.harness import FakeTransport, ProxyHarness


class Lost(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost: list[Exception | None] = []

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)


def test_close_calls_connection_lost_once_on_the_next_turn_as_asyncio_does() -> None:
    loop = asyncio.new_event_loop()
    try:
        protocol = Lost()
        transport = FakeTransport(protocol=protocol, loop=loop)
        transport.write(b"ab")
        transport.writelines([b"c", b"d"])
        transport.close()
        transport.abort()
        assert transport.is_closing() and transport.aborted and protocol.lost == []
        loop.run_until_complete(asyncio.sleep(0))
        assert protocol.lost == [None] and transport.written == b"abcd"
        assert transport.get_extra_info("peername") == ("127.0.0.1", 50000)
    finally:
        loop.close()


def test_the_clock_moves_only_when_advanced() -> None:
    harness, upstream = ProxyHarness.with_upstream(proxy_config)  # head_timeout: 10 s
    try:
        client = harness.client()
        client.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n")  # a head that never ends
        harness.settle(client)
        harness.advance(9.9)
        assert client.received == b"" and not client.closed
        harness.advance(0.2)
        harness.settle(client)
        assert client.reply().statuses == [408] and client.closed
        assert upstream.connections == []
    finally:
        harness.close()


def test_the_scripted_upstream_says_when_a_request_arrived() -> None:
    harness, upstream = ProxyHarness.with_upstream(proxy_config)
    try:
        client = harness.client()
        client.send(b"POST /myapp/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"2\r\nhi\r\n0\r\n\r\n")
        harness.run(upstream.requests_arrived(1))
        assert len(upstream.connections) == 1
        [seen] = upstream.requests
        assert seen.request_line == b"POST /x HTTP/1.1" and seen.body == b"hi"
        harness.settle(client)
        assert client.reply().statuses == [200] and client.reply().body == b"ok"
    finally:
        harness.close()
