"""A backend's name is resolved on a TTL, not on every connect; an IP literal never."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from portico.upstream.backend import Backend
from portico.upstream.pool import UpstreamPool


class CountingLoop:
    """Wraps the running loop's ``getaddrinfo``: counts lookups, can be made to fail."""

    def __init__(self, loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups: list[str] = []
        self.fail = False
        real = loop.getaddrinfo

        async def getaddrinfo(host: str, port: int, **kwargs: Any) -> Any:
            self.lookups.append(host)
            if self.fail:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return await real(host, port, **kwargs)

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def listening(host: str) -> asyncio.Server:
    """A loopback server on ``host``'s first address (``localhost`` may be ::1 first)."""

    def on_accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
    return await asyncio.start_server(on_accept, str(infos[0][4][0]), 0)


def test_a_name_is_looked_up_once_per_ttl_and_its_last_answer_outlives_a_failed_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        counting = CountingLoop(loop, monkeypatch)
        server = await listening("localhost")
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(loop, 8, 10.0)
        backend = pool.backend(Backend("http", "localhost", port))
        for _ in range(3):
            (await pool.connect(backend, 5.0)).abort()
        assert counting.lookups == ["localhost"]  # within the TTL: the answer is kept

        backend.resolve_at = loop.time()  # the TTL is over
        (await pool.connect(backend, 5.0)).abort()
        assert counting.lookups == ["localhost"] * 2
        assert backend.resolve_at >= loop.time() + pool.dns_ttl - 1

        backend.resolve_at = loop.time()
        counting.fail = True  # the resolver has a blip: the last address still serves
        (await pool.connect(backend, 5.0)).abort()
        assert counting.lookups == ["localhost"] * 3 and backend.failures == 0
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


def test_an_ip_literal_never_goes_to_the_resolver_and_an_unresolved_name_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        counting = CountingLoop(loop, monkeypatch)
        server = await listening("127.0.0.1")
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(loop, 8, 10.0)
        literal = pool.backend(Backend("http", "127.0.0.1", port))
        (await pool.connect(literal, 5.0)).abort()
        assert counting.lookups == [] and literal.address == ("127.0.0.1", port)

        counting.fail = True
        name = pool.backend(Backend("http", "localhost", port))
        with pytest.raises(socket.gaierror):
            await pool.connect(name, 5.0)
        assert name.failures == 1 and name.address is None and counting.lookups == ["localhost"]
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
