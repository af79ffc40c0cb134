"""What the two llhttp adapters (parser.py, response_parser.py) share: the head
meter, the HTTP version, joining body pieces, and error text."""

from __future__ import annotations

from typing import Final

import httptools

from portico.http.events import Data, Event, Headers
from portico.http.limits import HeadLimits

_VERSION_TEXTS: Final = {"1.1": b"1.1", "1.0": b"1.0"}


def llhttp_version(parser: httptools.HttpRequestParser | httptools.HttpResponseParser) -> bytes:
    """httptools gives the version as a str; the common ones are not encoded again."""
    text = parser.get_http_version()
    return _VERSION_TEXTS.get(text) or text.encode("ascii")


# A version and the byte after it, as they stand in request and status lines.
REQUEST_LINE_ENDS: Final = {b"HTTP/1.1\r": b"1.1", b"HTTP/1.0\r": b"1.0"}
STATUS_LINE_STARTS: Final = {b"HTTP/1.1 ": b"1.1", b"HTTP/1.0 ": b"1.0"}


def version_read(start: bytes | None, at: int, known: dict[bytes, bytes]) -> bytes | None:
    """The version as it stands in the read where the message began at the first byte.

    ``get_http_version`` formats a str on every call (120 ns, twice per proxied
    request). When the message began at ``start[0]`` its version sits at ``at``,
    followed by CR (a request) or SP (a response); llhttp has checked the line, so
    those bytes are the version it parsed. Any other layout (leading CRLF, a
    pipelined message) finds no key and the caller asks llhttp."""
    return None if start is None else known.get(start[at : at + 9])


def coalesce(events: list[Event]) -> list[Event]:
    """Join runs of Data events: a read full of tiny chunks is forwarded as one write."""
    out: list[Event] = []
    run: list[bytes] = []
    for event in events:
        if type(event) is Data:
            run.append(event.data)
            continue
        if run:
            out.append(Data(b"".join(run)))
            run = []
        out.append(event)
    if run:
        out.append(Data(b"".join(run)))
    return out


class HeadMeter:
    """Counts a head's size as it arrives, piece by piece.

    A head that begins in a read no longer than the field and head limits cannot break
    them within that read, so there its fields are only counted (the common case: no
    size per field). If the head goes on in a later read, ``head_goes_on`` measures the
    fields so far and every later field is measured as it comes."""

    __slots__ = ("count", "fed", "limits", "read_size", "size", "small", "unmetered")

    def __init__(self, limits: HeadLimits) -> None:
        self.limits = limits
        self.small = min(limits.max_header_size, limits.max_head_size)
        self.read_size = 0  # of the read being parsed
        self.unmetered = False
        self.size = 0
        self.count = 0
        self.fed = 0  # bytes fed while this head was incomplete (see _check_slow_head)

    def reset(self) -> None:
        """A head begins."""
        self.size = self.count = self.fed = 0
        self.unmetered = self.read_size <= self.small

    def head_goes_on(self, headers: Headers) -> None:
        """The read ended inside the head: measure what was only counted."""
        if self.unmetered:
            self.unmetered = False
            self.size = sum([len(name) + len(value) + 4 for name, value in headers])

    def add(self, name: bytes, value: bytes) -> str | None:
        """Count one field; say which limit it breaks, or None."""
        limits = self.limits
        self.count += 1
        if self.unmetered:
            return None if self.count <= limits.max_headers else _TOO_LARGE
        field = len(name) + len(value)
        self.size += field + 4
        if field > limits.max_header_size:
            return "a header field is too large"
        if self.size > limits.max_head_size or self.count > limits.max_headers:
            return _TOO_LARGE
        return None


_TOO_LARGE: Final = "head too large or too many header fields"


def describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"malformed HTTP: {text}"
