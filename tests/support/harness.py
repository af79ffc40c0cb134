"""Portico's request path in process: a real gateway, fake client sockets, a settable clock.

``ProxyHarness(toml)`` builds a gateway through the same pipeline as ``portico run``
(``parse`` -> ``serving_plan`` -> ``build_gateway``) on its own event loop. Each
``harness.client()`` is a real ``ClientConnection`` on a ``FakeTransport``: a test
feeds it raw bytes through the ``asyncio.Protocol`` methods and reads back exactly what
portico wrote, and whether it closed. Upstreams are real loopback servers (a
``ScriptedUpstream`` in the same loop, or a threaded ``Recorder``), dialled by the
gateway's real pool. Deadlines move with ``harness.advance(seconds)``: the gateway's
clock is set, never waited for, so 408/504/keep-alive/send timeouts take no time.

Only entry points are used here (``build_gateway``, ``ClientConnection(gw, scheme)``,
the Protocol methods, ``gw.now``, ``gw.connections`` and ``conn.check``), so the
internals may change under it; ``idle_upstream`` (for the socketless bench and fuzzer)
is the one place that knows the pool.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar, cast

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.config.provision import build_gateway
from portico.proxy.gateway import Gateway
from portico.server.loops import loop_factory
from portico.server.protocol import ClientConnection
from portico.upstream.connection import UpstreamConnection
from tests.support.client import Reply
from tests.support.scripted import Script, ScriptedUpstream, ok_script

T = TypeVar("T")
Address = tuple[str, int]


def new_loop() -> asyncio.AbstractEventLoop:
    """The loop ``portico run`` uses (uvloop where installed): error texts, such as a
    refused connect's, are the loop's own."""
    return loop_factory()[1]()


class FakeTransport(asyncio.Transport):
    """A socket's transport with no socket: records what was written and how it ended.

    ``close``/``abort`` call the protocol's ``connection_lost`` on the next loop turn,
    as asyncio's own transports do.
    """

    def __init__(self, peer: Address = ("127.0.0.1", 50000),
                 local: Address = ("127.0.0.1", 8080),
                 protocol: asyncio.BaseProtocol | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__({"peername": peer, "sockname": local})
        self.written = bytearray()
        self.closed = False  # close() or abort() was called
        self.aborted = False
        self.reading = True
        self.write_limits: tuple[int, int] | None = None
        self.buffered = 0  # what get_write_buffer_size answers; a test may set it
        self.eof_written = False
        self._protocol = protocol
        self._loop = loop
        self._lost = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.written += data

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # a tunnel takes the connection over

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.write_limits = (high or 0, low or 0)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self._end(aborted=False)

    def abort(self) -> None:
        self._end(aborted=True)

    def _end(self, aborted: bool) -> None:
        self.aborted = self.aborted or aborted
        if self.closed:
            return
        self.closed = True
        if self._protocol is not None and self._loop is not None:
            self._loop.call_soon(self.lose, None)

    def lose(self, exc: Exception | None) -> None:
        """The peer went away (or our close took effect): ``connection_lost``, once."""
        self.closed = True
        if not self._lost and self._protocol is not None:
            self._lost = True
            self._protocol.connection_lost(exc)


class CountingTransport(FakeTransport):
    """A FakeTransport that only counts what is written (the bench's timed loop)."""

    def __init__(self, peer: Address = ("127.0.0.1", 50000),
                 local: Address = ("127.0.0.1", 8080)) -> None:
        super().__init__(peer, local)
        self.out = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.out += len(data)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.out += sum(map(len, list_of_data))


class Client:
    """One simulated client connection: raw bytes in, portico's bytes out."""

    def __init__(self, harness: ProxyHarness, peer: Address, local: Address,
                 scheme: bytes) -> None:
        self.harness = harness
        self.protocol = ClientConnection(harness.gateway, scheme)
        self.transport = FakeTransport(peer, local, self.protocol, harness.loop)
        self.protocol.connection_made(self.transport)

    def send(self, data: bytes) -> None:
        """Bytes from the client, as one ``data_received`` (the protocol ignores them
        once closed, like a socket that is no longer read)."""
        if not self.transport.closed:
            cast(asyncio.Protocol, self.transport.get_protocol()).data_received(data)

    def eof(self) -> bool:
        """The client half-closed; returns what ``eof_received`` answered (True: keep)."""
        keep = bool(cast(asyncio.Protocol, self.transport.get_protocol()).eof_received())
        if not keep:
            self.transport.close()
        return keep

    def disconnect(self) -> None:
        """The client went away."""
        self.transport.lose(None)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    @property
    def received(self) -> bytes:
        return bytes(self.transport.written)

    @property
    def closed(self) -> bool:
        return self.transport.closed

    def reply(self) -> Reply:
        return Reply(self.received, self.closed)

    def take(self) -> bytes:
        """What arrived since the last ``take``."""
        data = bytes(self.transport.written)
        self.transport.written.clear()
        return data


class ProxyHarness:
    """A provisioned gateway on its own loop, driven by the test (see the module doc)."""

    def __init__(self, config: str, base: Path | None = None,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or new_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda _loop, context: self.loop_errors.append(context))
        root = base or Path.cwd()
        plan = serving_plan(parse(config, "harness"), root, root)
        self.gateway: Gateway = build_gateway(plan, self.loop)
        self.clients: list[Client] = []
        self.upstreams: list[ScriptedUpstream] = []  # stopped by close()

    @classmethod
    def with_upstream(cls, config_for: Callable[[str], str], script: Script = ok_script,
                      ) -> tuple[ProxyHarness, ScriptedUpstream]:
        """A ScriptedUpstream on a new loop, and a harness built from
        ``config_for(upstream.url)`` on the same loop."""
        loop = new_loop()
        upstream = loop.run_until_complete(ScriptedUpstream(script).start())
        harness = cls(config_for(upstream.url), loop=loop)
        harness.upstreams.append(upstream)
        return harness, upstream

    # -- clients ------------------------------------------------------------------------
    def client(self, peer: Address = ("127.0.0.1", 50000), local: Address = ("127.0.0.1", 8080),
               scheme: bytes = b"http") -> Client:
        client = Client(self, peer, local, scheme)
        self.clients.append(client)
        return client

    def exchange(self, data: bytes, quiet: float = 0.05, peer: Address = ("127.0.0.1", 50000),
                 ) -> Reply:
        """A fresh client sends ``data``; its reply once it closes or goes quiet; then the
        client leaves (as ``client.send_raw`` does over a socket)."""
        client = self.client(peer)
        client.send(data)
        self.settle(client, quiet)
        reply = client.reply()
        client.disconnect()
        self.turn()
        return reply

    # -- the loop -----------------------------------------------------------------------
    def run(self, awaitable: Awaitable[T], timeout: float = 10.0) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await awaitable
        return self.loop.run_until_complete(bounded())

    def turn(self, times: int = 3) -> None:
        """Run the callbacks that are ready now (a few loop iterations, no waiting)."""
        for _ in range(times):
            self.loop.run_until_complete(asyncio.sleep(0))

    def run_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Run the loop until ``condition()`` holds; fails after ``timeout`` seconds."""
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.001)
        self.run(poll(), timeout)

    def settle(self, client: Client, quiet: float = 0.05, limit: float = 10.0) -> None:
        """Run the loop until ``client`` is closed, or nothing more was written to it
        and nothing happened on the loop for ``quiet`` seconds (a pending upstream
        answer); the in-process twin of reading a socket until it goes quiet."""
        async def wait() -> None:
            deadline = time.monotonic() + limit
            last, still_since, still_turns = -1, time.monotonic(), 0
            while not client.closed and time.monotonic() < deadline:
                await asyncio.sleep(0.002)
                size = len(client.transport.written)
                if size != last:
                    last, still_since, still_turns = size, time.monotonic(), 0
                    continue
                still_turns += 1
                # Quiet by the clock and by loop turns: a process descheduled under load
                # for longer than ``quiet`` has not had the turns an answer needs.
                if still_turns >= 20 and time.monotonic() - still_since >= quiet:
                    return
        self.loop.run_until_complete(wait())
        self.turn()

    # -- the clock ----------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the gateway's clock on and run its deadline checks, as its tick does."""
        self.gateway.check_deadlines(self.gateway.now + seconds)
        self.turn()

    # -- the end ------------------------------------------------------------------------
    def close(self) -> None:
        """Drop every connection and the loop; a failure inside a callback fails here."""
        for client in self.clients:
            client.disconnect()
        self.gateway.abort_all()
        self.turn()
        for upstream in self.upstreams:
            self.loop.run_until_complete(upstream.stop())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
        assert not self.loop_errors, self.loop_errors


def idle_upstream(gateway: Gateway, route_index: int,
                  transport: FakeTransport | None = None) -> tuple[UpstreamConnection, FakeTransport]:
    """An upstream connection on a fake transport, idle in the gateway's pool, for the
    route ``route_index``: the next request to that route takes it instead of dialling.
    Feed it the upstream's answer with ``conn.data_received``."""
    conn = UpstreamConnection(gateway.routes.routes[route_index].backend)
    side = transport or FakeTransport(("127.0.0.1", 9), ("127.0.0.1", 40000))
    conn.connection_made(side)
    gateway.pool.release(conn, gateway.now)
    return conn, side
