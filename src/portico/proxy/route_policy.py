"""Everything a route decides about a request, compiled once at load."""

from __future__ import annotations

from dataclasses import dataclass

from portico.errors import Layer, ProxyError
from portico.http.events import Headers
from portico.http.headers import FRAMING, HOP_BY_HOP, connection_named
from portico.policy.context import RequestFacts
from portico.policy.forwarded import VIA
from portico.policy.header_ops import HeaderOps
from portico.routing.proxypass import LOCATION_HEADERS, ReverseMap
from portico.supervisor.gate import AppGate


@dataclass(frozen=True, slots=True)
class RouteLimits:
    max_body_size: int
    body_timeout: float
    connect_timeout: float
    response_timeout: float

    def body_too_large(self) -> ProxyError:
        return ProxyError(413, Layer.PROXY, "request body larger than this route allows "
                          f"({self.max_body_size} bytes; limits.max_body_size)")


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    limits: RouteLimits
    request_ops: HeaderOps
    response_ops: HeaderOps
    reverse: ReverseMap
    app: AppGate | None = None  # set when the route serves a supervised [[app]]

    def downstream_headers(
        self, headers: Headers, lnames: list[bytes], facts: RequestFacts, public_origin: bytes
    ) -> Headers:
        """The upstream's response fields as the client gets them, minus framing."""
        named = connection_named(headers, lnames) if b"connection" in lnames else frozenset()
        reverse = self.reverse
        out: Headers = []
        for lname, (name, value) in zip(lnames, headers, strict=True):
            if lname in HOP_BY_HOP or lname in FRAMING or lname in named:
                continue
            if lname in LOCATION_HEADERS:
                value = reverse.location(value, public_origin)
            elif lname == b"set-cookie":
                value = reverse.set_cookie(value)
            out.append((name, value))
        out.append((b"Via", VIA))
        return self.response_ops.apply(out, facts)
