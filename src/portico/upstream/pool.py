"""The runtime's backends, one per address, and their keep-alive connections.

The pool outlives a reload: the gateway a reload builds asks it for its
backends (``backend``), gets the one already known for an unchanged address,
and with it that address's warm connections and state; once that gateway
serves, the pool lets go of the backends no route names any more
(``retain``). Idle connections are kept per backend, LIFO, so the busiest stay
warm and the coldest age out, below the backend's own idle limit. A
connection is returned only when its last response ended cleanly with
keep-alive and nothing unasked-for arrived (``parser.clean``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable
from typing import Final

from portico.upstream.backend import Backend, Key
from portico.upstream.connection import UpstreamConnection
from portico.upstream.probes import Check, CheckState

DNS_TTL: Final = 30.0  # seconds a backend's name is used as last resolved


class UpstreamPool:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, max_idle: int, idle_timeout: float
    ) -> None:
        self._loop = loop
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.dns_ttl = DNS_TTL
        self.backends: dict[Key, Backend] = {}
        # Active checks' verdicts by (address, check ident): kept as the backends are.
        self.checks: dict[tuple[Key, str], CheckState] = {}

    def check_state(self, backend: Backend, check: Check) -> CheckState:
        """The verdict of ``check`` on ``backend``'s address: the one known, or a new one."""
        key = (backend.key, check.ident)
        state = self.checks.get(key)
        if state is None:
            state = self.checks[key] = CheckState(check)
        return state

    def backend(self, made: Backend) -> Backend:
        """The pool's backend at ``made``'s address: the one it has (state and idle
        connections kept; new connections use ``made``'s TLS context, read afresh), or
        ``made``, from now on the pool's."""
        known = self.backends.get(made.key)
        if known is None:
            self.backends[made.key] = made
            return made
        known.tls = made.tls
        return known

    def retain(self, wanted: Iterable[Backend], max_idle: int, idle_timeout: float) -> None:
        """Keep only the ``wanted`` backends (the serving gateway's), with these limits.
        The others close their idle connections now; one still lent to a request of a
        draining gateway is closed when that request ends."""
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        keep = {backend.key for backend in wanted}
        for gone in [check for check in self.checks if check[0] not in keep]:
            del self.checks[gone]
        for key in [key for key in self.backends if key not in keep]:
            backend = self.backends.pop(key)
            backend.retired = True
            backend.close_idle()

    def acquire(self, backend: Backend) -> UpstreamConnection | None:
        stack = backend.idle
        while stack:
            conn = stack.pop()
            if not conn.closed:
                return backend.lent(conn)
        return None

    def release(self, conn: UpstreamConnection, now: float) -> None:
        conn.user = None
        conn.resume_reading()
        backend = conn.backend
        backend.returned(conn)
        stack = backend.idle
        gate = backend.gate  # an app instance draining for a restart keeps none idle
        if (not conn.reusable or len(stack) >= self.max_idle or backend.retired
                or (gate is not None and not gate.up)):
            conn.abort()
            return
        conn.idle_since = now
        conn.from_pool = True
        stack.append(conn)

    def expire(self, now: float) -> None:
        limit = now - self.idle_timeout
        for backend in self.backends.values():
            stack = backend.idle
            while stack and stack[0].idle_since < limit:
                stack.pop(0).abort()

    def close_all(self) -> None:
        for backend in self.backends.values():
            backend.close_idle()

    async def connect(self, backend: Backend, timeout: float) -> UpstreamConnection:
        """A fresh connection; raises OSError (refused, unreachable) or TimeoutError."""
        try:
            host, port = await self._resolve(backend)
            async with asyncio.timeout(timeout):
                if backend.tls is None:
                    _, conn = await self._loop.create_connection(
                        lambda: UpstreamConnection(backend), host, port
                    )
                else:  # the timeout covers the handshake too
                    _, conn = await self._loop.create_connection(
                        lambda: UpstreamConnection(backend), host, port,
                        ssl=backend.tls, server_hostname=backend.host,
                        ssl_handshake_timeout=timeout,
                    )
        except (OSError, TimeoutError):
            backend.failures += 1
            raise
        backend.failures = 0
        return backend.lent(conn)

    async def _resolve(self, backend: Backend) -> tuple[str, int]:
        """A name is looked up at most every ``dns_ttl`` seconds, by a connect that
        needs it (not by a timer); if a lookup fails, the last answer serves until the
        next. An IP literal never goes to the resolver."""
        known = backend.address
        now = self._loop.time()
        if known is not None and now < backend.resolve_at:
            return known
        backend.resolve_at = now + self.dns_ttl
        try:
            infos = await self._loop.getaddrinfo(
                backend.host, backend.port, type=socket.SOCK_STREAM
            )
        except OSError:
            if known is None:
                backend.resolve_at = 0.0
                raise
            return known
        address = backend.address = (str(infos[0][4][0]), backend.port)
        return address


def connect_failure(exc: BaseException) -> str:
    """Why a connection to an upstream failed, for the 502 page."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = f"its TLS certificate is not trusted ({exc.verify_message})"
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"cannot connect to the upstream: {reason}"
