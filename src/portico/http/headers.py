"""Header-name sets that decide what crosses the proxy."""

from __future__ import annotations

from typing import Final

from portico.http.validate import connection_tokens

# RFC 9110 §7.6.1 plus the de facto ones (Caddy's hopHeaders, nginx).
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Framing is always written afresh; these never pass through from either side.
FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})

# A Connection token may never remove these (Apache CVE-2022-31813, Traefik
# CVE-2024-45410): they are portico's own or decide where a message ends.
PROTECTED: Final = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"forwarded",
        b"x-request-id",
        b"via",
    }
)


def connection_named(
    headers: list[tuple[bytes, bytes]], lnames: list[bytes] | None = None
) -> frozenset[bytes]:
    """Header names listed in Connection, which are hop-by-hop for this message."""
    named: set[bytes] = set()
    names = lnames if lnames is not None else [name.lower() for name, _ in headers]
    for i, (_, value) in enumerate(headers):  # not zip: mypyc compiles this loop natively
        lname = names[i]
        if lname == b"connection" and value.lower() not in _PLAIN:
            named.update(connection_tokens(value))
    return frozenset(named - PROTECTED) if named else _NONE


_PLAIN: Final = frozenset({b"keep-alive", b"close"})
_NONE: Final[frozenset[bytes]] = frozenset()
