"""Graceful stop of one serving process: no new connections, in-flight requests finish."""

from __future__ import annotations

import asyncio
import sys

from portico.proxy.gateway import Gateway


async def drain(
    gateway: Gateway, servers: list[asyncio.base_events.Server], timeout: float
) -> None:
    """Close the listeners, let idle keep-alive connections go, wait up to ``timeout``
    for the rest, then cut what is left and flush the access log."""
    for server in servers:
        server.close()
    gateway.drain()
    deadline = gateway.loop.time() + timeout
    while gateway.connections and gateway.loop.time() < deadline:
        await asyncio.sleep(0.05)
    gateway.abort_all()
    gateway.stop_clock()
    gateway.access_log.close()
    sys.stdout.flush()
