"""After a ``101 Switching Protocols``: both connections become one byte tunnel.

An exchange whose request asked for an upgrade the route allows (``limits.upgrades``,
WebSocket by default) forwards ``Upgrade`` and ``Connection: Upgrade``; the
upstream's answer decides. A ``101`` naming the same protocol hands both transports
to a ``Tunnel`` (``open_tunnel``); any other answer is relayed as a response and
neither connection is used again (http/response_parser.py, http/parser.py rule 5).

Rules:

1. Bytes keep their order: the 101's head goes to the client first, then the bytes
   the upstream sent with it; the client bytes that followed the request head go
   upstream before anything read later.
2. Nothing is parsed or changed in a tunnel's bytes: extensions and subprotocols
   are the peers' business. For WebSocket, only frame boundaries are followed
   (``FrameCursor``: two to fourteen bytes of each frame's head are read) so that
   a Close can be put between two frames.
3. Flow control links the two sides: a side whose peer's transport is full stops
   being read until it drains (both ways).
4. A half-close is passed on (``write_eof``); when both directions are closed, or
   either connection is lost, both are closed.
5. Deadlines, on the gateway's clock: ``tunnel_idle_timeout`` (no byte either way),
   ``tunnel_max_lifetime``, and at a drain (reload, stop) ``tunnel_drain_delay``;
   at the last two, each peer gets a WebSocket Close 1001 ("going away") when its
   stream is at a frame boundary, then the TCP close.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from portico.http.events import Headers, Request, Response

if TYPE_CHECKING:
    from portico.proxy.downstream import Downstream
    from portico.proxy.gateway import Gateway
    from portico.settings import RouteLimits
    from portico.upstream.connection import UpstreamConnection

WEBSOCKET: Final = b"websocket"
GOING_AWAY: Final = 1001
WRITE_HIGH_WATER: Final = 64 * 1024  # both connections' (server/protocol.py, upstream/)
_CLOSE_TO_CLIENT: Final = b"\x88\x02" + GOING_AWAY.to_bytes(2, "big")


def allowed_upgrade(request: Request, limits: RouteLimits) -> bytes:
    """The protocol to ask the upstream for, or b"" (not allowed here: sent as plain)."""
    upgrade = request.upgrade
    return upgrade if upgrade.decode("latin-1") in limits.upgrades else b""


def upgrade_fields(request: Request) -> Headers:
    """Upgrade and Connection for the upstream (both hop-by-hop, so written afresh)."""
    return [(b"Connection", b"Upgrade"), (b"Upgrade", request.get(b"upgrade").strip())]


def close_frame(masked: bool) -> bytes:
    """A WebSocket Close 1001; masked (RFC 6455 §5.3) when portico speaks as the client."""
    if not masked:
        return _CLOSE_TO_CLIENT
    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(GOING_AWAY.to_bytes(2, "big")))
    return b"\x88\x82" + mask + payload


class FrameCursor:
    """Where WebSocket frames end in one direction of a tunnel (rule 2): only heads
    are read; payloads are skipped by their length."""

    __slots__ = ("head", "left")

    def __init__(self) -> None:
        self.left = 0  # payload bytes of the current frame still to come
        self.head = b""  # a frame head cut by the end of a read

    @property
    def at_boundary(self) -> bool:
        return not self.left and not self.head

    def feed(self, data: bytes) -> None:
        if self.head:
            data = self.head + data
            self.head = b""
        size = len(data)
        left = self.left
        pos = 0
        while True:
            if left:
                if size - pos <= left:
                    left -= size - pos
                    break
                pos += left
                left = 0
            if pos >= size:
                break
            if size - pos < 2:
                self.head = data[pos:]
                break
            second = data[pos + 1]
            length = second & 0x7F
            head = 6 if second & 0x80 else 2  # the mask key, if any
            if length >= 126:
                head += 2 if length == 126 else 8
            if size - pos < head:
                self.head = data[pos:]
                break
            if length == 126:
                length = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif length == 127:
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
            pos += head
            left = length
        self.left = left


class TunnelSide(asyncio.Protocol):
    """One of the tunnel's two connections, as its transport's protocol."""

    def __init__(self, tunnel: Tunnel, transport: asyncio.Transport, upstream: bool) -> None:
        self.tunnel = tunnel
        self.transport = transport
        self.upstream = upstream  # the upstream's connection (Close frames to it are masked)
        self.peer: TunnelSide | None = None
        self.frames = FrameCursor() if tunnel.websocket else None  # what this side sends
        self.eof = False  # it half-closed
        self.lost = False

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.lost:
            return
        tunnel = self.tunnel
        tunnel.last_active = tunnel.gw.now
        if tunnel.going_away:
            return  # after our Close: nothing more is relayed
        peer.transport.write(data)
        frames = self.frames
        if frames is not None:
            frames.feed(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.eof or peer.lost or not peer.transport.can_write_eof():
            self.tunnel.close()
            return True
        peer.transport.write_eof()
        return True  # the other direction goes on (rule 4)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.tunnel.close()

    def pause_writing(self) -> None:
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and not self.peer.lost and not self.tunnel.going_away:
            self.peer.transport.resume_reading()

    def send_close(self) -> None:
        """Close 1001 to this side's peer-facing end: written to this side's transport,
        if the stream it gets (what the peer sent) is between frames."""
        peer = self.peer
        if self.lost or peer is None or peer.frames is None or not peer.frames.at_boundary:
            return
        self.transport.write(close_frame(masked=self.upstream))


class Tunnel:
    """Two transports relaying bytes until one side goes (see the module doc)."""

    def __init__(
        self,
        gw: Gateway,
        limits: RouteLimits,
        protocol: bytes,
        upstream: UpstreamConnection,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.gw = gw
        self.websocket = protocol == WEBSOCKET
        self.upstream_conn = upstream
        self.on_closed = on_closed
        self.idle_timeout = limits.tunnel_idle_timeout
        now = gw.now
        self.last_active = now
        self.ends_at = now + limits.tunnel_max_lifetime if limits.tunnel_max_lifetime else 0.0
        self.drain_at = 0.0
        self.going_away = False
        self.closed = False
        self.client: TunnelSide | None = None
        self.upstream: TunnelSide | None = None

    def start(
        self,
        client: asyncio.Transport,
        held: bytes,
        upstream: asyncio.Transport,
        rest: bytes,
    ) -> None:
        """Take both transports over (rule 1: ``rest`` to the client, ``held`` upstream)."""
        self.client = client_side = TunnelSide(self, client, upstream=False)
        self.upstream = upstream_side = TunnelSide(self, upstream, upstream=True)
        client_side.peer, upstream_side.peer = upstream_side, client_side
        client.set_protocol(client_side)
        upstream.set_protocol(upstream_side)
        if rest:
            if upstream_side.frames is not None:
                upstream_side.frames.feed(rest)
            client.write(rest)
        if held:
            if client_side.frames is not None:
                client_side.frames.feed(held)
            upstream.write(held)
        for transport in (client, upstream):
            if not transport.is_reading():
                transport.resume_reading()
        for side in (client_side, upstream_side):
            # Full before the switch: its transport will not say pause_writing again (only
            # resume_writing), so the other side is paused here (rule 3).
            if side.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                side.pause_writing()
        self.gw.tunnels += 1

    # -- endings ---------------------------------------------------------------------
    def close(self) -> None:
        """Close both connections, after what was written to them (rule 4)."""
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.upstream):
            if side is not None and not side.lost:
                side.transport.close()
        self.gw.tunnels -= 1
        self.upstream_conn.tunnel_closed()
        if self.on_closed is not None:
            self.on_closed()

    def abort(self) -> None:
        for side in (self.client, self.upstream):
            if side is not None and not side.lost:
                side.transport.abort()
        self.close()

    def go_away(self) -> None:
        """Close 1001 to both peers (at frame boundaries), then close (rule 5)."""
        if self.closed or self.going_away:
            return
        self.going_away = True
        for side in (self.client, self.upstream):
            if side is not None and self.websocket:
                side.send_close()
        self.close()

    # -- deadlines -------------------------------------------------------------------
    def drain(self, delay: float) -> None:
        """A reload or a stop: go away after ``delay`` seconds."""
        at = self.gw.now + delay
        if not self.drain_at or at < self.drain_at:
            self.drain_at = at

    def check(self, now: float) -> None:
        if self.closed:
            return
        if (self.drain_at and now >= self.drain_at) or (self.ends_at and now >= self.ends_at):
            self.go_away()
        elif now - self.last_active > self.idle_timeout:
            self.close()


def open_tunnel(
    gw: Gateway,
    client: Downstream,
    conn: UpstreamConnection,
    response: Response,
    headers: Headers,
    protocol: bytes,
    limits: RouteLimits,
) -> None:
    """The upstream switched to ``protocol``: answer the client with its 101 (``headers``
    filtered as any response's) and relay from now on."""
    rest = conn.parser.take_rest()
    upstream = conn.hand_over()
    tunnel = Tunnel(gw, limits, protocol, conn)
    upgrade = b""
    for name, value in response.headers:
        if name.lower() == b"upgrade":
            upgrade = value
    headers += [(b"Connection", b"Upgrade"), (b"Upgrade", upgrade)]
    taken = client.switch_protocols(response, headers, tunnel)
    if taken is None:  # the client is gone already
        upstream.abort()
        conn.tunnel_closed()
        return
    transport, held = taken
    tunnel.start(cast(asyncio.Transport, transport), held, upstream, rest)
