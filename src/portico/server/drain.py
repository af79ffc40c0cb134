"""Graceful stop of one serving process: no new connections, in-flight requests finish."""

from __future__ import annotations

import asyncio
import sys

from portico.proxy.gateway import Gateway

RELOAD_IDLE_GRACE = 1.0  # seconds an idle kept-alive connection may still send a request


def open_counts(gateway: Gateway) -> tuple[int, int]:
    """(client connections, requests in flight) of one serving process; an open tunnel
    (WebSocket) counts as a request in flight: it is one until it closes."""
    connections = gateway.connections
    return len(connections), sum(
        1 for conn in connections if conn.exchange is not None or conn.tunnel is not None)


async def drain(
    gateway: Gateway,
    servers: list[asyncio.base_events.Server],
    timeout: float,
    idle_grace: float = 0.0,
    cut: asyncio.Event | None = None,
) -> int:
    """Close the listeners, let idle keep-alive connections go (after ``idle_grace``),
    wait up to ``timeout`` (or until ``cut`` is set) for the rest, then cut what is left
    and flush the access log. Returns how many connections were cut.

    With a grace (a reload), the wait also lasts at least that long: a connection
    accepted just before the listeners closed may still be in its TLS handshake, not
    yet counted, and is served (then closed) instead of dying with a retired worker."""
    for server in servers:
        server.close()
    gateway.drain(idle_grace)
    loop = gateway.loop
    deadline = loop.time() + timeout
    settle = loop.time() + min(idle_grace, timeout)
    while (gateway.connections or loop.time() < settle) and loop.time() < deadline:
        if cut is not None and cut.is_set():
            break
        await asyncio.sleep(0.05)
    left = len(gateway.connections)
    gateway.abort_all()
    gateway.stop_clock()
    gateway.access_log.close()
    sys.stdout.flush()
    return left
