"""Events produced by the parsers and consumed by the proxy.

Plain slotted classes rather than frozen dataclasses: one is made per message
on the hot path, and frozen dataclasses pay for ``object.__setattr__``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

Headers = list[tuple[bytes, bytes]]


class Body(IntEnum):
    """How a message's body is delimited."""

    NONE = 0
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3  # responses only: the body ends when the connection does


class Request:
    __slots__ = (
        "body",
        "content_length",
        "expect_continue",
        "headers",
        "host",
        "keep_alive",
        "lnames",
        "method",
        "target",
        "upgrade",
        "version",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: bytes,
        headers: Headers,
        host: bytes,
        body: Body,
        content_length: int,
        keep_alive: bool,
        expect_continue: bool,
        lnames: list[bytes] | None = None,
    ) -> None:
        self.method = method
        self.target = target  # origin-form: path and query, never an authority
        self.version = version  # b"1.1" or b"1.0"
        self.headers = headers  # as received, names in their original case
        self.host = host  # validated Host (lower-cased), b"" only for HTTP/1.0 without one
        self.body = body
        self.content_length = content_length
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue
        # Header names lower-cased once, aligned with ``headers``; later phases reuse them.
        self.lnames = lnames if lnames is not None else [name.lower() for name, _ in headers]
        # The protocol asked for with Upgrade and Connection: upgrade (lower-cased, e.g.
        # b"websocket"); b"" for a plain request. Such a request never keeps the
        # connection alive: it becomes a tunnel or the connection closes after it.
        self.upgrade = b""

    def get(self, lname: bytes) -> bytes:
        """The first value of a header (by lower-case name), or b""."""
        for i, name in enumerate(self.lnames):
            if name == lname:
                return self.headers[i][1]
        return b""

    def __repr__(self) -> str:
        return f"Request({self.method!r}, {self.target!r}, HTTP/{self.version.decode()})"


class Response:
    __slots__ = (
        "body", "content_length", "headers", "keep_alive", "lnames", "reason", "status", "version"
    )

    def __init__(
        self,
        status: int,
        reason: bytes,
        version: bytes,
        headers: Headers,
        body: Body,
        content_length: int,
        keep_alive: bool,
        lnames: list[bytes] | None = None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.body = body
        self.content_length = content_length
        self.keep_alive = keep_alive
        self.lnames = lnames if lnames is not None else [name.lower() for name, _ in headers]

    def __repr__(self) -> str:
        return f"Response({self.status}, body={self.body.name})"


class Data:
    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"Data({len(self.data)} bytes)"


class EndOfMessage:
    __slots__ = ()

    def __repr__(self) -> str:
        return "EndOfMessage()"


END: Final = EndOfMessage()


class Rejected:
    """The stream is broken from here on; ``status`` is the reply owed, ``reason`` why."""

    __slots__ = ("reason", "status")

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return f"Rejected({self.status}, {self.reason!r})"


Event = Request | Response | Data | EndOfMessage | Rejected
