"""The per-request facts that header templates and forwarding read."""

from __future__ import annotations


class RequestFacts:
    """What portico knows of one request; values are bytes ready for a header."""

    __slots__ = ("host", "port", "prefix", "remote_addr", "request_id", "scheme")

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
        self.port = port  # the port the client connected to
        self.remote_addr = remote_addr
        self.prefix = prefix  # the stripped prefix, b"" when nothing was stripped
        self.request_id = request_id

    def get(self, name: str) -> bytes:
        value: bytes = getattr(self, name)
        return value
