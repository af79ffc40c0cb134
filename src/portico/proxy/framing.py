"""Framing decided afresh for each hop (RFC 9112 §6), and when a request may be sent again
(the ``retryable`` of the errors made here).

Neither side's framing fields are ever copied: the length, chunking or close
each peer sees is decided here from the parsed message, the request's method
and the HTTP versions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from portico.errors import (
    APP_DIED,
    APP_REFUSED,
    NEXT_BACKEND,
    STALE_CONNECTION,
    Layer,
    ProxyError,
)
from portico.http.events import Body, Headers, Request, Response

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.route_policy import RoutePolicy

BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
# A supervised app's orphaned workers may accept once more before the sweep.
MAX_APP_RETRIES: Final = 2


def frame_request(request: Request) -> Headers:
    """The upstream gets a fresh Content-Length or chunked coding, never the client's bytes."""
    if request.body is Body.CHUNKED:
        return [(b"Transfer-Encoding", b"chunked")]
    if request.body is Body.LENGTH:
        return [(b"Content-Length", b"%d" % request.content_length)]
    return [(b"Content-Length", b"0")] if request.method in BODY_METHODS else []


def upstream_broke(
    reason: str, request: Request, received: int, tries: int, pooled: bool, supervised: bool,
    balanced: bool = False,
) -> ProxyError:
    """The 502 for an upstream connection that broke before the response head.

    Retryable (RFC 9110 §9.2.2) only for an idempotent request without a body that got
    no response byte, and only where sending it again may help: once on a connection
    that had sat in the pool (the upstream closed it meanwhile), twice for a supervised
    app (it died under the request; its orphaned workers may accept once more); on a
    balanced route, to another backend (the route's ``retries`` bound it). A request with
    a body is never sent twice: it may have been streamed."""
    safe = received == 0 and request.method in IDEMPOTENT and request.body is Body.NONE
    if safe and pooled and tries < 1:
        return ProxyError(502, Layer.UPSTREAM, reason, source=STALE_CONNECTION)
    if safe and balanced:
        return ProxyError(502, Layer.UPSTREAM, reason, source=NEXT_BACKEND)
    if safe and supervised and tries < MAX_APP_RETRIES:
        return ProxyError(502, Layer.UPSTREAM, reason, source=APP_DIED)
    return ProxyError(502, Layer.UPSTREAM, reason)


def connect_refused(
    reason: str, supervised: bool, app_waits: int, balanced: bool = False
) -> ProxyError:
    """The 502 for a failed connect; on a balanced route retryable on another backend
    for any method (nothing was sent); else retryable once for a supervised app, which
    may have just crashed: its restart is waited for."""
    if balanced:
        return ProxyError(502, Layer.UPSTREAM, reason, source=NEXT_BACKEND)
    if supervised and app_waits == 0:
        return ProxyError(502, Layer.UPSTREAM, reason, source=APP_REFUSED)
    return ProxyError(502, Layer.UPSTREAM, reason)


def connect_timed_out(balanced: bool) -> ProxyError:
    """The 504 for a connect that timed out: another backend's turn on a balanced route."""
    source = NEXT_BACKEND if balanced else 0
    return ProxyError(504, Layer.UPSTREAM, "timed out connecting to the upstream", source=source)


def balanced_response(
    policy: RoutePolicy, exchange: Exchange, status: int, headers: Headers
) -> Headers:
    """A balanced route's response head: passive health judges it (status, latency) and
    a sticky route's cookie is set."""
    backend = exchange.backend
    now = exchange.gw.now
    assert policy.passive is not None
    policy.passive.answered(backend, status, now - exchange.started, now)
    if policy.sticky is not None:
        headers = policy.sticky.stamp(headers, exchange.request, backend)
    return headers


class Framing:
    """How the client's copy of a response is delimited."""

    __slots__ = ("chunked", "close_delimited", "fields")

    def __init__(self, fields: Headers, chunked: bool, close_delimited: bool) -> None:
        self.fields = fields  # Content-Length or Transfer-Encoding to add, if any
        self.chunked = chunked  # re-chunk the body for the client
        self.close_delimited = close_delimited  # ends at close (an HTTP/1.0 client)


def frame_response(request: Request, response: Response) -> Framing:
    if request.method == b"HEAD" or response.status == 304:
        length = declared_length(response.headers)  # what a GET would have carried
        return Framing([(b"Content-Length", length)] if length else [], False, False)
    if response.status == 204:
        return Framing([], False, False)
    if response.body is Body.LENGTH:
        return Framing([(b"Content-Length", b"%d" % response.content_length)], False, False)
    if response.body is Body.NONE:
        return Framing([(b"Content-Length", b"0")], False, False)
    if request.version == b"1.1":
        return Framing([(b"Transfer-Encoding", b"chunked")], True, False)
    return Framing([], False, True)


def connection_field(keep_alive: bool, version: bytes) -> Headers:
    """Connection: close when the client connection ends; keep-alive said out loud to 1.0."""
    if not keep_alive:
        return [(b"Connection", b"close")]
    return [(b"Connection", b"keep-alive")] if version == b"1.0" else []


def declared_length(headers: Headers) -> bytes | None:
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return value
    return None
