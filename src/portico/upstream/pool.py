"""Keep-alive connections per upstream, bounded and expired below the backend's idle limit.

Idle connections are kept LIFO, so the busiest stay warm and the coldest
age out. A connection is returned only when its last response ended cleanly
with keep-alive and nothing unasked-for arrived (``parser.clean``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from portico.routing.table import Upstream
from portico.upstream.connection import UpstreamConnection

Key = tuple[str, str, int, str]


class UpstreamPool:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_idle: int, idle_timeout: float
    ) -> None:
        self._loop = loop
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._idle: dict[Key, list[UpstreamConnection]] = {}
        self._addresses: dict[Key, tuple[str, int]] = {}

    def acquire(self, key: Key) -> UpstreamConnection | None:
        stack = self._idle.get(key)
        while stack:
            conn = stack.pop()
            if not conn.closed:
                return conn
        return None

    def release(self, conn: UpstreamConnection, now: float) -> None:
        conn.user = None
        conn.resume_reading()
        stack = self._idle.setdefault(conn.key, [])
        if not conn.reusable or len(stack) >= self.max_idle:
            conn.abort()
            return
        conn.idle_since = now
        stack.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        stack = self._idle.get(conn.key)
        if stack and conn in stack:
            stack.remove(conn)

    def expire(self, now: float) -> None:
        limit = now - self.idle_timeout
        for stack in self._idle.values():
            while stack and stack[0].idle_since < limit:
                stack.pop(0).abort()

    def close_all(self) -> None:
        for stack in self._idle.values():
            while stack:
                stack.pop().abort()

    async def connect(self, upstream: Upstream, timeout: float) -> UpstreamConnection:
        """A fresh connection; raises OSError (refused, unreachable) or TimeoutError."""
        key = upstream.key
        host, port = await self._resolve(upstream)
        async with asyncio.timeout(timeout):
            if upstream.tls is None:
                _, conn = await self._loop.create_connection(
                    lambda: UpstreamConnection(self, key), host, port
                )
            else:  # the timeout covers the handshake too
                _, conn = await self._loop.create_connection(
                    lambda: UpstreamConnection(self, key), host, port,
                    ssl=upstream.tls, server_hostname=upstream.host,
                    ssl_handshake_timeout=timeout,
                )
        return conn

    async def _resolve(self, upstream: Upstream) -> tuple[str, int]:
        """Names are looked up once and kept; IP literals skip the resolver."""
        known = self._addresses.get(upstream.key)
        if known is not None:
            return known
        infos = await self._loop.getaddrinfo(
            upstream.host, upstream.port, type=socket.SOCK_STREAM
        )
        address = (str(infos[0][4][0]), upstream.port)
        self._addresses[upstream.key] = address
        return address


def connect_failure(exc: BaseException) -> str:
    """Why a connection to an upstream failed, for the 502 page."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"its TLS certificate is not trusted ({exc.verify_message})"
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot connect to the upstream: {reason}"
