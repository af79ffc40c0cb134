"""Everything a route decides about a request, compiled once at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from portico.http.events import Headers
from portico.http.headers import FRAMING, HOP_BY_HOP, connection_named
from portico.policy.context import RequestFacts
from portico.policy.forwarded import VIA
from portico.policy.header_ops import HeaderOps
from portico.routing.proxypass import LOCATION_HEADERS, ReverseMap
from portico.settings import RouteLimits
from portico.upstream.availability import Availability

# What a response field needs, by lower-case name; absent: passed on as it is.
_DROP: Final = 1  # hop-by-hop or framing: written afresh for the client
_LOCATION: Final = 2  # ProxyPassReverse
_COOKIE: Final = 3  # ProxyPassReverseCookiePath / Domain
_RESPONSE_FIELD_KIND: Final[dict[bytes, int]] = {
    **{name: _LOCATION for name in LOCATION_HEADERS},
    b"set-cookie": _COOKIE,
    **{name: _DROP for name in HOP_BY_HOP | FRAMING},
}


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    limits: RouteLimits
    request_ops: HeaderOps
    response_ops: HeaderOps
    reverse: ReverseMap
    app: Availability | None = None  # set when the route serves a supervised [[app]]

    def downstream_headers(
        self, headers: Headers, lnames: list[bytes], facts: RequestFacts, public_origin: bytes
    ) -> Headers:
        """The upstream's response fields as the client gets them, minus framing."""
        named = connection_named(headers, lnames) if b"connection" in lnames else None
        reverse = self.reverse
        kinds = _RESPONSE_FIELD_KIND
        out: Headers = []
        for i, field in enumerate(headers):  # not zip: mypyc compiles this natively
            lname = lnames[i]
            kind = kinds.get(lname, 0)
            if kind == 0:
                if named is None or lname not in named:
                    out.append(field)  # the parsed tuple itself: no new one per field
            elif kind == _LOCATION:
                out.append((field[0], reverse.location(field[1], public_origin)))
            elif kind == _COOKIE:
                out.append((field[0], reverse.set_cookie(field[1])))
        out.append((b"Via", VIA))
        return self.response_ops.apply(out, facts)
