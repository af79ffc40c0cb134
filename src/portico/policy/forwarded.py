"""Forwarding headers and trust (what ProxyFix ``x_for/x_proto/x_host/x_prefix`` reads).

Order matters (catalogue finding 4): Connection-named and hop-by-hop fields
go first, then everything an untrusted peer said about forwarding, and only
then portico adds its own, which nothing the client sends can remove.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Final

from portico.http.events import Headers
from portico.http.headers import HOP_BY_HOP, connection_named
from portico.policy.context import RequestFacts

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Everything that claims to describe an earlier hop. From an untrusted peer
# all of it is dropped (catalogue 40): gunicorn reads X-Forwarded-Ssl and
# X-Forwarded-Protocol, others Front-End-Https or X-Url-Scheme.
FORWARDING: Final = frozenset(
    {
        b"forwarded",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-server",
        b"x-forwarded-ssl",
        b"x-forwarded-protocol",
        b"x-forwarded-scheme",
        b"x-real-ip",
        b"x-url-scheme",
        b"front-end-https",
        b"x-original-host",
    }
)
# Framing and the fields portico writes itself never pass from the client.
_REWRITTEN: Final = frozenset({b"host", b"content-length", b"expect", b"x-request-id", b"via"})

VIA: Final = b"1.1 portico"

_NONE: Final[frozenset[bytes]] = frozenset()
# Byte needles are ints: ``b"_" in name`` makes CPython raise and clear a TypeError
# before it searches (~100 ns a test, 15 ns with an int; docs/performance.md).
_UNDERSCORE: Final = ord("_")
_COLON: Final = ord(":")

# What becomes of a client's field, by lower-case name; absent: passed on.
_DROP: Final = 1  # hop-by-hop, framing, or written by portico itself
_EARLIER_HOP: Final = 2  # about an earlier hop: kept from a trusted peer only
_REQUEST_FIELD_KIND: Final[dict[bytes, int]] = {
    **{name: _EARLIER_HOP for name in FORWARDING},
    **{name: _DROP for name in HOP_BY_HOP | _REWRITTEN},
}

# The fields portico writes on every forwarded request, exactly as it writes them.
# No client copy of these survives the forwarding step, so header rules may find
# them by exact bytes (header_ops ``own``).
OWN_REQUEST_HEADERS: Final = {
    name.lower(): name
    for name in (
        b"Host",
        b"X-Forwarded-For",
        b"X-Forwarded-Proto",
        b"X-Forwarded-Host",
        b"X-Forwarded-Port",
        b"X-Forwarded-Prefix",
        b"Forwarded",
        b"X-Request-ID",
        b"Via",
    )
}

# A prefix must be a plain absolute path: never ``//host``, ``\``, or dot-segments
# (an unchecked X-Forwarded-Prefix becomes an open redirect through ProxyFix).
_PREFIX: Final = re.compile(rb"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9._~!$&'()*+,=:@%-]+)*\Z")


def safe_prefix(value: bytes) -> bytes:
    """A trusted peer's X-Forwarded-Prefix if it is a plain path, else b""."""
    value = value.strip().rstrip(b"/")
    return value if _PREFIX.match(value) else b""


class Trust:
    """The set of peers allowed to speak for the client (``trusted_proxies``)."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(c, strict=False) for c in cidrs
        )
        self._cache: dict[str, bool] = {}

    def trusts(self, address: str) -> bool:
        if not self.networks:
            return False
        known = self._cache.get(address)
        if known is None:
            try:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
            except ValueError:
                known = False
            else:
                known = any(ip in net for net in self.networks)
            if len(self._cache) < 4096:
                self._cache[address] = known
        return known


class Forwarding:
    """Builds the header list sent upstream for one request."""

    def __init__(self, trust: Trust, rfc7239: bool = False) -> None:
        self.trust = trust
        self.rfc7239 = rfc7239

    def upstream_headers(
        self,
        headers: Headers,
        lnames: list[bytes],
        facts: RequestFacts,
        trusted: bool,
        host_header: bytes,
    ) -> Headers:
        named = connection_named(headers, lnames) if b"connection" in lnames else _NONE
        out: Headers = [(b"Host", host_header)]
        earlier_for: list[bytes] = []
        earlier: dict[bytes, bytes] = {}
        earlier_forwarded: list[bytes] = []
        kinds = _REQUEST_FIELD_KIND
        for i, field in enumerate(headers):  # not zip: mypyc compiles this natively
            lname = lnames[i]
            kind = kinds.get(lname, 0)
            if kind == 0:
                if named and lname in named:
                    continue  # listed in Connection: hop-by-hop for this message
                if not trusted and _UNDERSCORE in field[0]:
                    continue  # WSGI folds - and _ into one key (catalogue 26)
                out.append(field)  # the parsed tuple itself: no new one per field
                continue
            value = field[1]
            if kind == _EARLIER_HOP and trusted:
                if lname == b"x-forwarded-for":
                    earlier_for.append(value)
                elif lname == b"forwarded":
                    earlier_forwarded.append(value)
                else:
                    earlier[lname] = value

        client = facts.remote_addr
        earlier_for.append(client)
        out.append((b"X-Forwarded-For", b", ".join(earlier_for)))
        out.append((b"X-Forwarded-Proto", earlier.get(b"x-forwarded-proto", facts.scheme)))
        out.append((b"X-Forwarded-Host", earlier.get(b"x-forwarded-host", facts.host)))
        out.append((b"X-Forwarded-Port", earlier.get(b"x-forwarded-port", facts.port)))
        outer_prefix = (
            safe_prefix(earlier[b"x-forwarded-prefix"]) if b"x-forwarded-prefix" in earlier else b""
        )
        if facts.prefix or outer_prefix:
            out.append((b"X-Forwarded-Prefix", outer_prefix + facts.prefix))
        if self.rfc7239:
            element = b"for=%s;proto=%s;host=%s" % (
                _forwarded_node(client),
                facts.scheme,
                _quoted(facts.host),
            )
            out.append((b"Forwarded", b", ".join([*earlier_forwarded, element])))
        if earlier:
            for key in (b"x-real-ip", b"x-original-host", b"x-forwarded-server"):
                if key in earlier:
                    out.append((key, earlier[key]))
        out.append((b"X-Request-ID", facts.request_id))
        out.append((b"Via", VIA))
        return out


def _forwarded_node(address: bytes) -> bytes:
    """RFC 7239 §6: IPv6 nodes are bracketed and quoted."""
    return b'"[%s]"' % address if _COLON in address else address


def _quoted(value: bytes) -> bytes:
    return b'"%s"' % value if _COLON in value or value.find(b"[") >= 0 else value
