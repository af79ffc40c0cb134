"""What an exchange needs of the client side: the seam between the proxy and a protocol.

The exchange speaks in messages (a status and fields, body data, an end, an
error); the client protocol turns them into its own wire form and makes every
decision that belongs to it: framing and chunking, ``100 Continue``, which 1xx
to relay, the error page's bytes, and whether the connection stays open.
``server/protocol.py`` (HTTP/1.1: ``Http1Response``) is one implementation; an
HTTP/2 stream or a tunnel would be another. Mirrors ``upstream.connection.UpstreamUser``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from portico.errors import ProxyError
    from portico.http.events import Headers, Response
    from portico.proxy.tunnel import Tunnel


class Downstream:
    """One request's client side. Output may be held until ``flush`` (or ``end``).

    A base class rather than a typing.Protocol: compiled, the exchange's calls are then
    native (a vtable slot each), not attribute lookups by name."""

    def __init__(self) -> None:
        self.scheme = b"http"  # how the client reached portico: b"http" or b"https"
        self.remote_addr = b"-"  # the peer's address, b"-" if unknown
        self.remote_port = b""  # the peer's port, b"" if unknown (rules' REMOTE_PORT)
        self.trusted = False  # the peer is a trusted proxy (its X-Forwarded-* are kept)
        self.local_authority = b""  # "host:port" it connected to (a Host-less 1.0 request)

    @property
    def reading_paused(self) -> bool:
        """Portico itself holds the request body back (not the client's delay)."""
        raise NotImplementedError

    def accept_body(self) -> None:
        """The upstream is attached: the request body may come (HTTP/1.1: 100 Continue)."""
        raise NotImplementedError

    def start_response(self, response: Response, headers: Headers) -> None:
        """The response head: ``response``'s status and framing, ``headers`` end-to-end."""
        raise NotImplementedError

    def send_informational(self, response: Response) -> None:
        """A 1xx the upstream sent ahead of its response."""
        raise NotImplementedError

    def send_data(self, data: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Write what the last batch of calls produced."""
        raise NotImplementedError

    def end(self) -> None:
        """The response is complete (and flushed)."""
        raise NotImplementedError

    def send_error(self, error: ProxyError, request_id: bytes) -> int:
        """Answer with ``error``'s page (nothing was sent yet); returns the body's length."""
        raise NotImplementedError

    def send_answer(self, status: int, headers: Headers) -> None:
        """A bodiless answer portico makes itself (a redirect)."""
        raise NotImplementedError

    def switch_protocols(
        self, response: Response, headers: Headers, tunnel: Tunnel
    ) -> tuple[asyncio.BaseTransport, bytes] | None:
        """A 101: write its head, then give the connection up to ``tunnel``. Returns the
        transport and the bytes read after the request head; None if it is gone."""
        raise NotImplementedError

    def send_body_from(self, body: LocalBody) -> None:
        """Stream a body portico reads itself (a static file) as the client takes it,
        then ``body.done()``. This base pumps it all at once; HTTP/1.1 pumps a burst per
        loop turn and waits while the client's socket is full."""
        while not body.pump():
            pass
        body.done()

    def pause_reading(self, reason: object) -> None:
        """Hold the request body back for ``reason`` (until every reason is resumed)."""
        raise NotImplementedError

    def resume_reading(self, reason: object) -> None:
        raise NotImplementedError

    def finished(self, clean: bool) -> None:
        """The exchange is over; ``clean``: the connection may carry another request."""
        raise NotImplementedError


class LocalBody:
    """A response body portico makes itself, sent part by part (proxy/static.py)."""

    def pump(self) -> bool:
        """Send the next part (send_data, flush); True once all is sent and ended."""
        raise NotImplementedError

    def done(self) -> None:
        """All was sent: log it and let the client go on (``Downstream.finished``)."""
        raise NotImplementedError

    def close(self) -> None:
        """The client went away before the end: release what it holds."""
        raise NotImplementedError
