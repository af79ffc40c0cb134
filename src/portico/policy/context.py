"""The per-request facts that header templates and forwarding read."""

from __future__ import annotations

from typing import Final

from portico.http.events import Headers, Request


class RequestFacts:
    """What portico knows of one request; values are bytes ready for a header."""

    __slots__ = ("host", "port", "prefix", "remote_addr", "request_id", "rule_fields", "scheme")

    def __init__(
        self,
        scheme: bytes,
        host: bytes,
        port: bytes,
        remote_addr: bytes,
        prefix: bytes,
        request_id: bytes,
    ) -> None:
        self.scheme = scheme
        self.host = host  # the validated Host as the client sent it (port included)
        self.port = port  # the port the client addressed (see public_port)
        self.remote_addr = remote_addr
        self.prefix = prefix  # the stripped prefix, b"" when nothing was stripped
        self.request_id = request_id
        # (request, response) fields rewrite rules set (proxy/rewrite.py), if any
        self.rule_fields: tuple[Headers, Headers] | None = None

    def get(self, name: str) -> bytes:
        value: bytes = getattr(self, name)
        return value


def public_port(host: bytes, scheme: bytes) -> bytes:
    """The port the client addressed: Host's, else the scheme's default (RFC 9110 7.2).

    Not the listening socket's port, which is wrong behind a port mapping
    (a container's 8080 published as 80).
    """
    _, colon, port = host.rpartition(b":")
    if colon and port.isdigit():  # "[::1]" splits as "[:" ":" "1]": not a port
        return port
    return b"443" if scheme == b"https" else b"80"


_RID_CHARS: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:")


def client_request_id(request: Request) -> bytes | None:
    """The client's own X-Request-ID, if it is short and plain enough to pass on."""
    value = request.get(b"x-request-id")
    if value and len(value) <= 128 and set(value) <= _RID_CHARS:
        return value
    return None
