"""Checks on a parsed request head that llhttp (and h11) leave to us.

Both parser adapters hand the raw pieces to :func:`build_request`, so the two
behave alike whatever their own quirks; what llhttp accepts and a proxy must
not (``Transfer-Encoding: gzip, chunked``, TE on HTTP/1.0, a missing or doubled
Host, ``*``, fragments, absolute-form for another host, HTTP/0.9 and 2.0) is
refused here. The catalogue numbers are those of
``proxy-hardening-cases.md``.
"""

from __future__ import annotations

import re
from typing import Final

from portico.errors import ProtocolError
from portico.http.events import Body, Headers, Request

# An IP literal, or an RFC 3986 reg-name: unreserved and sub-delims ("0.0.0.0=5000"), but
# no "," (it would split X-Forwarded-Host into a list) and no %-encoding (a second spelling
# of a name: a Host selects a route only as its one canonical spelling).
_HOST: Final = re.compile(
    rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+;=-]+)(?::([0-9]{1,5}))?\Z"
)
# The fields build_request looks at; every other field only passes through it.
_FRAMING_AND_HOST: Final = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"expect", b"upgrade",
     b"content-type", b"authorization"}
)
# Fields a request may carry once: two are refused rather than one of them chosen
# (a second Content-Type or Authorization is read differently by different servers).
_SINGLETONS: Final = frozenset({b"content-type", b"authorization"})
_HASH: Final = ord("#")  # int needles: see policy/forwarded.py's _UNDERSCORE
_COMMA: Final = ord(",")
_ABSOLUTE: Final = re.compile(rb"(?i)(https?)://([^/?#]*)(.*)\Z", re.DOTALL)


_valid_hosts: dict[bytes, bool] = {}


def valid_host(value: bytes) -> bool:
    """A Host value portico will route on: reg-name or IP literal, optional port.

    A server sees few distinct Hosts, so answers are remembered (bounded)."""
    known = _valid_hosts.get(value)
    if known is None:
        match = _HOST.match(value)
        port = match.group(1) if match is not None else None
        known = match is not None and (port is None or 0 < int(port) <= 65535)
        if len(_valid_hosts) >= 1024:
            _valid_hosts.clear()
        _valid_hosts[value] = known
    return known


def connection_tokens(value: bytes) -> list[bytes]:
    if _COMMA not in value:  # one token, the usual "keep-alive" or "close"
        token = value.strip().lower()
        return [token] if token else []
    return [token.strip().lower() for token in value.split(b",") if token.strip()]


def keeps_alive(connection: bytes, keep_alive: bool, version: bytes) -> bool:
    """Persistence after one Connection field (RFC 9112 9.3), for requests and responses
    alike: "close" ends it; "keep-alive" asks for it on HTTP/1.0, where it is off."""
    tokens = connection_tokens(connection)
    if b"close" in tokens:
        return False
    return keep_alive or (version == b"1.0" and b"keep-alive" in tokens)


def build_request(method: bytes, target: bytes, version: bytes, headers: Headers) -> Request:
    """Validate a request head and work out its framing; raise ProtocolError if bad."""
    if version == b"2.0" or version.startswith(b"2") or version.startswith(b"3"):
        raise ProtocolError("HTTP/2 and later are not spoken over HTTP/1 connections", 505)
    if version not in (b"1.1", b"1.0"):
        raise ProtocolError(f"unsupported HTTP version {version.decode('latin-1')}")
    if method == b"CONNECT":
        raise ProtocolError("CONNECT is not supported by a reverse proxy", 405)

    hosts: list[bytes] = []
    lengths: list[bytes] = []
    codings: list[bytes] = []
    keep_alive = version == b"1.1"
    expect_continue = False
    upgrade = b""
    upgrade_asked = False  # Connection lists "upgrade"
    singletons: list[bytes] = []
    lnames = [name.lower() for name, _ in headers]
    for i, (_, value) in enumerate(headers):  # not zip: mypyc compiles this loop natively
        lname = lnames[i]
        if lname not in _FRAMING_AND_HOST:
            continue
        if lname == b"host":
            hosts.append(value)
        elif lname == b"content-length":
            lengths.append(value)
        elif lname == b"transfer-encoding":
            codings.append(value)
        elif lname == b"connection":
            keep_alive = keeps_alive(value, keep_alive, version)
            if len(value) > 6 and b"upgrade" in value.lower():
                upgrade_asked = upgrade_asked or b"upgrade" in connection_tokens(value)
        elif lname == b"upgrade":
            upgrade = value.strip().lower() if not upgrade else b","  # two: refused below
        elif lname in _SINGLETONS:
            if lname in singletons:
                raise ProtocolError(f"more than one {lname.decode('latin-1')} header")
            singletons.append(lname)
        elif lname == b"expect":
            if value.strip().lower() != b"100-continue":
                raise ProtocolError("unsupported expectation", 417)
            expect_continue = version == b"1.1"  # HTTP/1.0 clients get no 1xx

    if target.startswith(b"/"):
        pass
    elif target == b"*":
        raise ProtocolError("asterisk-form targets are not served")
    else:
        absolute = _ABSOLUTE.match(target)
        if absolute is None:
            raise ProtocolError("request target must be origin-form (/path) or absolute-form")
        authority = absolute.group(2).lower()
        if not hosts or authority != hosts[0].lower():
            raise ProtocolError("absolute-form target names a host other than Host")
        target = absolute.group(3) or b"/"
        if not target.startswith(b"/"):
            target = b"/" + target
    if _HASH in target:
        raise ProtocolError("request target contains a fragment")

    if len(hosts) > 1:
        raise ProtocolError("more than one Host header")
    host = hosts[0].lower() if hosts else b""
    if not hosts and version == b"1.1":
        raise ProtocolError("HTTP/1.1 request without Host")
    if hosts and not valid_host(host):
        raise ProtocolError("malformed Host header")

    body = Body.NONE
    content_length = 0
    if codings:
        if version != b"1.1":
            raise ProtocolError("Transfer-Encoding on an HTTP/1.0 request")
        if len(codings) > 1 or codings[0].strip().lower() != b"chunked":
            raise ProtocolError("Transfer-Encoding other than a lone 'chunked'", 400)
        if lengths:
            raise ProtocolError("both Content-Length and Transfer-Encoding")
        body = Body.CHUNKED
    elif lengths:
        if len(lengths) > 1 or not lengths[0].isdigit():  # bytes: ASCII digits only
            raise ProtocolError("invalid or repeated Content-Length")
        content_length = int(lengths[0])
        body = Body.LENGTH if content_length else Body.NONE

    if upgrade_asked and upgrade and version == b"1.1":
        if upgrade == b",":
            raise ProtocolError("more than one Upgrade header")
        if body is Body.CHUNKED:  # llhttp would leave its end to us: refused, not guessed
            raise ProtocolError("an upgrade request with a chunked body")
        # Whether it is tunnelled or refused, nothing after it is read as HTTP: the
        # connection ends with this exchange unless it becomes a tunnel.
        keep_alive = False
    else:
        upgrade = b""
    request = Request(
        method, target, version, headers, host, body, content_length, keep_alive, expect_continue,
        lnames,
    )
    if upgrade:
        request.upgrade = upgrade
    return request
