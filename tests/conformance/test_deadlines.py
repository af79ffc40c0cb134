"""Deadline and pooling cases in process, on the gateway's settable clock (no waiting).

The same config as the conformance portico (1 s timeouts, a 0.1 s tick) in front of a
ScriptedUpstream; ``harness.advance`` moves the clock and runs the deadline checks the
tick would. ``test_e50`` and ``test_f58`` keep timing real deadlines over sockets.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator

import pytest

from tests.conformance.conftest import H, config
from tests.conftest import proxy_config
from tests.support.harness import ProxyHarness
from tests.support.scripted import ScriptedUpstream, UpstreamConn

POST = b"POST /myapp/ HTTP/1.1\r\n" + H
TICK = 0.1


def conformance_config(url: str) -> str:
    return config(url, 9, 9)


@pytest.fixture
def rig() -> Iterator[tuple[ProxyHarness, ScriptedUpstream]]:
    harness, upstream = ProxyHarness.with_upstream(conformance_config)
    yield harness, upstream
    harness.close()


def advance_until(harness: ProxyHarness, done: object, limit: float) -> float:
    """Tick the clock until ``done()`` (a callable) holds; the clock time that took."""
    waited = 0.0
    while not done() and waited < limit:  # type: ignore[operator]
        harness.advance(TICK)
        waited += TICK
    return waited


def test_e50_slowloris_gets_408_at_the_total_head_deadline_inprocess(
        rig: tuple[ProxyHarness, ScriptedUpstream]) -> None:
    harness, upstream = rig
    client = harness.client()
    client.send(b"GET /myapp/ HTTP/1.1\r\n")
    waited = 0.0
    for byte in b"X-Slow: " + b"a" * 40:  # a byte every 0.25 s keeps an idle timer happy
        client.send(bytes([byte]))
        harness.advance(0.25)
        waited += 0.25
        if client.received:
            break
    harness.settle(client)
    assert client.received.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < waited < 3 and not upstream.connections


def test_e51_slow_post_gets_408_and_the_upstream_is_dropped(
        rig: tuple[ProxyHarness, ScriptedUpstream]) -> None:
    harness, upstream = rig
    upstream.reset_log(sink)
    client = harness.client()
    client.send(POST + b"Content-Length: 1000000\r\n\r\nx")
    harness.run(upstream.accepted())
    advance_until(harness, lambda: client.closed, 3)
    harness.settle(client)
    assert client.reply().statuses == [408] and client.closed
    harness.run(upstream.connections[0].closed_by_peer.wait(), timeout=3)


async def sink(conn: UpstreamConn) -> None:
    while await conn.read_some():
        pass


def test_e55_client_that_stops_reading_is_dropped_after_send_timeout() -> None:
    async def endless(conn: UpstreamConn) -> None:
        await conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        chunk = b"x" * 65536
        try:
            while True:
                conn.send(chunk)
                await conn.writer.drain()  # paused by portico's backpressure
        except ConnectionError:
            upstream_cut.set()

    upstream_cut = asyncio.Event()
    harness, _ = ProxyHarness.with_upstream(functools.partial(
        proxy_config, server='[server.limits]\nsend_timeout = "1s"'), endless)
    try:
        client = harness.client()
        client.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.run_until(lambda: len(client.received) > 65536)
        client.pause_writing()  # the client's socket buffer is full: it reads nothing
        harness.turn(20)
        paused_at = len(client.received)
        for _ in range(9):
            harness.advance(TICK)
        assert not client.closed  # 0.9 s: not yet
        # The upstream side is bounded by backpressure, not buffered without limit.
        assert len(client.received) - paused_at < 1 << 20
        waited = advance_until(harness, lambda: client.closed, 5)
        assert client.closed and client.transport.aborted and waited < 0.5
        assert harness.run(upstream_cut.wait(), timeout=10) is True
    finally:
        harness.close()


def test_e56_idle_keepalive_connection_closes_silently(
        rig: tuple[ProxyHarness, ScriptedUpstream]) -> None:
    harness, _ = rig
    client = harness.client()
    client.send(b"GET /myapp/ HTTP/1.1\r\n" + H + b"\r\n")
    harness.settle(client)
    first = client.reply()
    client.take()
    waited = advance_until(harness, lambda: client.closed, 5)
    assert first.statuses == [200] and not first.closed
    assert client.closed and client.received == b""  # no 408 on an idle connection
    assert 0.9 < waited < 3


def test_f59_stalled_upstream_is_504_and_a_post_is_not_retried(
        rig: tuple[ProxyHarness, ScriptedUpstream]) -> None:
    harness, upstream = rig

    async def stall(conn: UpstreamConn) -> None:
        await conn.read_request()
        await conn.closed_by_peer.wait()

    upstream.reset_log(stall)
    client = harness.client()
    client.send(b"POST /myapp/ HTTP/1.1\r\n" + H + b"Content-Length: 2\r\n\r\nxx")
    harness.run(upstream.requests_arrived())  # the POST is at the upstream now
    waited = advance_until(harness, lambda: bool(client.received), 5)
    harness.settle(client)
    assert client.reply().status == 504 and 0.9 < waited < 3
    assert len(upstream.connections) == 1


def test_f60_stale_pooled_connection_get_is_retried_post_is_not() -> None:
    async def keepalive_expires(conn: UpstreamConn) -> None:
        # Answers one request, then closes when the next arrives: the backend's keep-alive
        # timer fired just as portico reused the connection.
        if await conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await conn.read_request()
        conn.close()

    harness, upstream = ProxyHarness.with_upstream(proxy_config, keepalive_expires)
    try:
        client = harness.client()
        statuses = []
        for method in (b"GET", b"GET", b"POST"):
            client.send(method + b" /myapp/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
            harness.run_until(lambda: b"\r\n\r\n" in client.received)
            harness.settle(client)
            statuses.append(client.reply().status)
            client.take()
        # GET 2 met the expired connection and was retried on a fresh one; the POST met the
        # next expired one and was not retried: it may have been processed.
        assert statuses == [200, 200, 502]
        assert [r.request_line.split(b" ")[0] for r in upstream.requests] == [
            b"GET", b"GET", b"GET", b"POST"]
        assert len(upstream.connections) == 2
    finally:
        harness.close()
