"""The listening sockets and who serves them: this process (``workers = 1``) or N
worker processes (server/workers.py), behind one interface, ``Listeners``.

The main process binds every listener itself (``bind``), once, and finds the
https port there; ``serve`` puts a Runtime's gateway behind inherited or
bound sockets, the same in the main process and in a worker.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any, Protocol

from portico.config.listen import parse_listen
from portico.config.plan import ServingPlan
from portico.server.protocol import ClientConnection

if TYPE_CHECKING:
    from portico.server.reload import Runtime

Bound = list[tuple[str, list[socket.socket]]]  # per address: its scheme and sockets


class Listeners(Protocol):
    """Where the serving happens. ``counts`` are (connections, requests) per serving
    process, None for one that did not answer in time."""

    def addresses(self) -> list[tuple[str, Any]]: ...
    def describe(self) -> str: ...
    async def start(self) -> None: ...
    async def reload(self, plan: ServingPlan) -> None: ...
    def reload_certificates(self, indices: list[int]) -> None: ...
    async def counts(self) -> list[tuple[int, int] | None]: ...
    async def status(self) -> list[dict[str, Any]]: ...
    async def stop(self, timeout: float) -> int: ...
    def cut(self) -> None: ...


def bind(listen: list[str], count: int) -> Bound:
    """Per address each listen URL resolves to, ``count`` SO_REUSEPORT sockets (the
    kernel spreads new connections over them) or, without that option, one shared."""
    reuse_port = count > 1 and hasattr(socket, "SO_REUSEPORT")
    bound: Bound = []
    try:
        for url in listen:
            scheme, host, port = parse_listen(url)
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
            # Each address once, as asyncio's create_server binds them (localhost: ::1
            # and 127.0.0.1).
            for family, address in dict.fromkeys((info[0], info[4]) for info in infos):
                sockets: list[socket.socket] = []
                bound.append((scheme, sockets))
                for _ in range(count if reuse_port else 1):
                    sock = socket.socket(family, socket.SOCK_STREAM)
                    sockets.append(sock)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if reuse_port:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    # Port 0 picks a free port once; the other sockets join it.
                    sock.bind(sockets[0].getsockname() if len(sockets) > 1 else address)
                    sock.listen(1024)
    except OSError:
        close(bound)
        raise
    return bound


def close(bound: Bound) -> None:
    for _, sockets in bound:
        for sock in sockets:
            sock.close()


def https_port(bound: Bound) -> int:
    """The first https listener's port (an http request is redirected there), else 443."""
    return next((sockets[0].getsockname()[1] for scheme, sockets in bound
                 if scheme == "https"), 443)


async def serve(
    runtime: Runtime, listen: list[tuple[str, socket.socket]], head_timeout: float
) -> list[asyncio.Server]:
    """Accept on each socket; a new connection gets the gateway in force then."""
    servers = []
    for scheme, sock in listen:
        tls = runtime.certs.listener if scheme == "https" and runtime.certs else None
        label = scheme.encode("ascii")
        servers.append(await runtime.loop.create_server(
            lambda label=label: ClientConnection(runtime.serving, label),  # reload: the new
            sock=sock,
            ssl=tls,
            ssl_handshake_timeout=head_timeout if tls else None,
        ))
    return servers


class InProcess:
    """``workers = 1``: the main process serves its own Runtime."""

    def __init__(self, runtime: Runtime, bound: Bound, head_timeout: float) -> None:
        self.runtime = runtime
        self.bound = bound
        self.head_timeout = head_timeout
        self.servers: list[asyncio.Server] = []

    def addresses(self) -> list[tuple[str, Any]]:
        return [(scheme, sockets[0].getsockname()) for scheme, sockets in self.bound]

    def describe(self) -> str:
        return ""

    async def start(self) -> None:
        self.servers = await serve(
            self.runtime, [(scheme, sockets[0]) for scheme, sockets in self.bound],
            self.head_timeout)

    async def reload(self, plan: ServingPlan) -> None:
        """Nothing to do here: the Runtime's swap is this process's reload."""

    def reload_certificates(self, indices: list[int]) -> None:
        """Nothing to do here: the main process's certificate store is the listeners'."""

    async def counts(self) -> list[tuple[int, int] | None]:
        return [self.runtime.counts()]

    async def status(self) -> list[dict[str, Any]]:
        return []

    async def stop(self, timeout: float) -> int:
        if not self.servers:  # start-up failed half-way
            close(self.bound)
            return 0
        servers, self.servers = self.servers, []
        return await self.runtime.stop(servers, timeout)

    def cut(self) -> None:
        self.runtime.cut()
