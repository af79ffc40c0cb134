"""Upgrade tunnels in process (proxy/tunnel.py): a client on a fake transport, the upstream
a ScriptedUpstream on real loopback sockets. The real servers (Flask-Sock, FastAPI,
Socket.IO) are in tests/integration/test_websocket.py."""

from __future__ import annotations

import functools

from portico.proxy.tunnel import FrameCursor, TunnelSide, close_frame
from portico.server.drain import open_counts
from tests.conftest import proxy_config
from tests.inprocess.conftest import StartRig
from tests.support.harness import Client, ProxyHarness
from tests.support.scripted import ScriptedUpstream, UpstreamConn

UPGRADE = (b"GET /myapp/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Origin: http://a\r\n\r\n")
SWITCHED = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
HELLO = b"\x81\x05hello"  # an unmasked text frame, as a server sends it
MASKED_HI = b"\x81\x82\x00\x00\x00\x00hi"  # a masked one (zero mask), as a client sends it


async def echo_after_101(conn: UpstreamConn, first: bytes = b"") -> None:
    """Answer the upgrade with a 101 (and ``first``, in the same write), then echo."""
    if await conn.read_request() is None:
        return
    conn.send(SWITCHED + first)
    while data := await conn.read_some():
        conn.send(data)


def config(upstream: str, extra: str = "") -> str:
    return proxy_config(upstream, extra_route=extra)


def open_tunnel(harness: ProxyHarness, client: Client, request: bytes = UPGRADE) -> bytes:
    client.send(request)
    harness.run_until(lambda: b"\r\n\r\n" in client.received)
    return client.take()


def test_upgrade_is_forwarded_and_the_101_becomes_a_tunnel(rig: StartRig) -> None:
    harness, upstream = rig(config, functools.partial(echo_after_101, first=HELLO))
    client = harness.client()
    client.send(UPGRADE + MASKED_HI)  # client bytes after the head: forwarded first
    harness.run_until(lambda: client.received.endswith(MASKED_HI))
    head, _, rest = client.received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"Upgrade: websocket" in head and b"Connection: Upgrade" in head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    assert rest == HELLO + MASKED_HI  # the 101's own bytes, then the echo
    [seen] = upstream.requests
    assert seen.header(b"upgrade") == b"websocket" and seen.header(b"connection") == b"Upgrade"
    assert seen.header(b"origin") == b"http://a"
    assert seen.header(b"sec-websocket-key") == b"dGhlIHNhbXBsZSBub25jZQ=="
    assert harness.gateway.tunnels == 1
    assert open_counts(harness.gateway) == (1, 1)  # status: one connection, one in flight
    for _ in range(100):
        client.send(MASKED_HI)
    harness.run_until(lambda: client.received.count(MASKED_HI) == 101)
    client.disconnect()
    harness.run(upstream.connections[0].closed_by_peer.wait(), timeout=5)
    harness.turn()
    assert harness.gateway.tunnels == 0 and not harness.gateway.connections


def test_keep_alive_upgrade_token_list_and_server_speaks_first(rig: StartRig) -> None:
    harness, _ = rig(config, functools.partial(echo_after_101, first=HELLO))
    client = harness.client()
    request = UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade")
    client.send(request)
    harness.run_until(lambda: client.received.endswith(HELLO))
    assert client.received.startswith(b"HTTP/1.1 101 ")


def test_a_non_101_answer_is_relayed_and_nothing_is_reused(rig: StartRig) -> None:
    forbidden = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden"

    async def refuse(conn: UpstreamConn) -> None:
        while await conn.read_request() is not None:
            conn.send(forbidden)

    harness, upstream = rig(config, refuse)
    client = harness.client()
    client.send(UPGRADE + MASKED_HI)
    harness.settle(client)
    reply = client.reply()
    assert reply.statuses == [403] and reply.closed  # and the raw bytes never became a request
    assert reply.header(b"connection") == b"close"
    harness.run(upstream.connections[0].closed_by_peer.wait(), timeout=5)  # not pooled
    assert not harness.gateway.routes.routes[0].backend.idle
    assert len(upstream.requests) == 1


def test_an_unasked_101_is_a_502(rig: StartRig) -> None:
    async def switch(conn: UpstreamConn) -> None:
        if await conn.read_request() is not None:
            conn.send(SWITCHED)

    harness, _ = rig(config, switch)
    reply = harness.exchange(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
    assert reply.statuses == [502]


def test_upgrades_off_for_a_route_sends_a_plain_request(rig: StartRig) -> None:
    harness, upstream = rig(functools.partial(config, extra="limits.upgrades = []"))
    reply = harness.exchange(UPGRADE)
    assert reply.statuses == [200] and reply.closed
    [seen] = upstream.requests
    assert seen.header(b"upgrade") is None and seen.header(b"connection") is None


def test_other_protocols_are_tunnelled_when_allowed(rig: StartRig) -> None:
    async def switch(conn: UpstreamConn) -> None:
        if await conn.read_request() is None:
            return
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: MyProto\r\nConnection: upgrade\r\n\r\n")
        while data := await conn.read_some():
            conn.send(data.upper())

    harness, _ = rig(functools.partial(config, extra='limits.upgrades = ["myproto"]'), switch)
    client = harness.client()
    open_tunnel(harness, client, UPGRADE.replace(b"websocket", b"MyProto"))
    client.send(b"raw bytes")
    harness.run_until(lambda: client.received == b"RAW BYTES")


def test_backpressure_pauses_the_other_side(rig: StartRig) -> None:
    harness, _ = rig(config, echo_after_101)
    client = harness.client()
    open_tunnel(harness, client)
    up = harness.gateway
    side = client.transport.get_protocol()
    assert isinstance(side, TunnelSide) and side.peer is not None
    side.pause_writing()  # the client stopped reading: the upstream is no longer read
    peer = side.peer
    assert not peer.transport.is_reading()
    side.resume_writing()
    assert peer.transport.is_reading()
    peer.pause_writing()  # the upstream is full: the client is no longer read
    assert not client.transport.reading
    peer.resume_writing()
    assert client.transport.reading and up.tunnels == 1


def test_a_client_full_at_the_switch_pauses_the_upstream(rig: StartRig) -> None:
    harness, _ = rig(config, echo_after_101)
    client = harness.client()
    client.transport.buffered = 100_000  # the client has not read what came before
    open_tunnel(harness, client)
    side = client.transport.get_protocol()
    assert isinstance(side, TunnelSide) and side.peer is not None
    assert not side.peer.transport.is_reading()
    client.transport.buffered = 0
    side.resume_writing()  # what the transport says once it drains
    assert side.peer.transport.is_reading()


def test_half_close_is_passed_on(rig: StartRig) -> None:
    async def answer_then_close(conn: UpstreamConn) -> None:
        if await conn.read_request() is None:
            return
        conn.send(SWITCHED)
        assert await conn.read_some() == MASKED_HI
        assert await conn.read_some() == b""  # the client's half-close arrived
        conn.send(HELLO)  # the other direction still works
        conn.close()

    harness, _ = rig(config, answer_then_close)
    client = harness.client()
    open_tunnel(harness, client)
    client.send(MASKED_HI)
    assert client.eof()  # kept: the other direction goes on
    harness.run_until(lambda: client.closed)
    assert client.received == HELLO
    assert harness.gateway.tunnels == 0


def test_idle_tunnel_is_closed(rig: StartRig) -> None:
    harness, upstream = rig(functools.partial(config, extra='limits.tunnel_idle_timeout = "60s"'),
                            echo_after_101)
    client = harness.client()
    open_tunnel(harness, client)
    harness.advance(30)
    assert not client.closed
    client.send(MASKED_HI)  # activity moves the idle deadline
    harness.run_until(lambda: client.received == MASKED_HI)
    harness.advance(40)
    assert not client.closed
    harness.advance(25)
    assert client.closed
    harness.run(upstream.connections[0].closed_by_peer.wait(), timeout=5)
    assert client.received == MASKED_HI  # an idle cut sends no Close frame


def test_lifetime_cap_and_drain_send_close_1001_to_both_peers(rig: StartRig) -> None:
    harness, upstream = rig(
        functools.partial(config, extra='limits.tunnel_max_lifetime = "1h"'), echo_after_101)
    client = harness.client()
    open_tunnel(harness, client)
    harness.gateway.drain()  # a reload or stop: tunnels stay up for tunnel_drain_delay (5 s)
    harness.advance(4)
    assert not client.closed
    client.send(MASKED_HI)
    harness.run_until(lambda: client.received == MASKED_HI)
    harness.advance(1.5)
    assert client.closed and client.received == MASKED_HI + close_frame(masked=False)
    conn = upstream.connections[0]
    harness.run(conn.closed_by_peer.wait(), timeout=5)
    tail = bytes(conn.received).rpartition(MASKED_HI)[2]
    assert tail[:2] == b"\x88\x82" and len(tail) == 8  # masked Close, 1001
    mask, payload = tail[2:6], tail[6:]
    assert bytes(b ^ mask[i] for i, b in enumerate(payload)) == b"\x03\xe9"


def test_frame_cursor_follows_boundaries() -> None:
    cursor = FrameCursor()
    big = b"\x82\x7e\x01\x00" + b"x" * 256
    huge_head = b"\x82\x7f" + (70000).to_bytes(8, "big")
    stream = HELLO + MASKED_HI + big + huge_head + b"y" * 70000 + HELLO
    for size in (1, 3, 7, 1000):
        cursor = FrameCursor()
        for start in range(0, len(stream), size):
            cursor.feed(stream[start:start + size])
        assert cursor.at_boundary, size
    cursor.feed(big[:100])
    assert not cursor.at_boundary


def test_scripted_upstream_is_not_left_open(rig: StartRig) -> None:
    harness, upstream = rig(config, echo_after_101)
    for _ in range(20):
        client = harness.client()
        open_tunnel(harness, client)
        client.disconnect()
    harness.run_until(lambda: all(c.closed_by_peer.is_set() for c in upstream.connections))
    harness.turn()
    assert len(upstream.connections) == 20 and harness.gateway.tunnels == 0
    assert isinstance(upstream, ScriptedUpstream)
