"""One TCP connection to an upstream, lent to one exchange at a time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, Protocol, cast

from portico.http.events import Event
from portico.http.response_parser import ResponseParser

if TYPE_CHECKING:
    from portico.upstream.backend import Backend

HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024


class UpstreamUser(Protocol):
    """What a connection reports to the exchange that holds it."""

    def on_upstream_events(self, events: list[Event]) -> None: ...
    def on_upstream_lost(self, events: list[Event]) -> None: ...
    def on_upstream_writable(self, writable: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "backend",
        "closed",
        "from_pool",
        "idle_since",
        "lent",
        "parser",
        "read_paused",
        "transport",
        "user",
        "write_paused",
    )

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.lent = False  # counted in the backend's in_flight
        self.parser = ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.user: UpstreamUser | None = None
        self.closed = False
        self.write_paused = False
        self.read_paused = False
        self.idle_since = 0.0  # loop time it last went back to the pool
        # It has sat in the pool (set by the pool): the upstream may have closed it
        # meanwhile, so a request it breaks on may be sent again (framing.upstream_broke).
        self.from_pool = False

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def data_received(self, data: bytes) -> None:
        user = self.user
        if user is None:  # an idle pooled connection must stay silent
            self.abort()
            return
        events = self.parser.feed(data)
        if events:
            user.on_upstream_events(events)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        user = self.user
        self.user = None
        if user is not None:
            user.on_upstream_lost(self.parser.eof())
        self.backend.drop(self)
        self.parser.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.user is not None:
            self.user.on_upstream_writable(False)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.user is not None:
            self.user.on_upstream_writable(True)

    # -- used by the exchange and the pool ---------------------------------------
    def lend(self, user: UpstreamUser, method: bytes, upgrade: bytes = b"") -> None:
        self.user = user
        self.parser.expect(method, upgrade)

    def hand_over(self) -> asyncio.Transport:
        """After a 101: the transport goes to a tunnel (proxy/tunnel.py), which owns it
        from now on (its reads, its close). Still counted in use until ``tunnel_closed``."""
        assert self.transport is not None
        self.user = None
        self.closed = True  # never pooled, never aborted from here
        self.parser.close()
        return self.transport

    def tunnel_closed(self) -> None:
        self.backend.drop(self)

    def pause_reading(self) -> None:
        if not self.read_paused and self.transport is not None:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and self.transport is not None:
            self.read_paused = False
            if not self.closed:
                self.transport.resume_reading()

    @property
    def reusable(self) -> bool:
        return not self.closed and self.parser.clean and not self.write_paused

    @property
    def keeps_alive(self) -> bool:
        """Reusable, and its last response did not ask for the connection to close."""
        return self.reusable and self.parser.last_keep_alive

    def abort(self) -> None:
        """Drop the connection now: it is never pooled again."""
        self.user = None
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()
        self.backend.drop(self)
