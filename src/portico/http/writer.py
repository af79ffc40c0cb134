"""Serialise heads and body framing. Framing is always ours, never copied."""

from __future__ import annotations

from typing import Final

from portico.http.events import Headers

_REASONS: Final = {
    100: b"Continue",
    200: b"OK",
    204: b"No Content",
    206: b"Partial Content",
    301: b"Moved Permanently",
    302: b"Found",
    303: b"See Other",
    304: b"Not Modified",
    307: b"Temporary Redirect",
    308: b"Permanent Redirect",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    414: b"URI Too Long",
    416: b"Range Not Satisfiable",
    417: b"Expectation Failed",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    501: b"Not Implemented",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
    505: b"HTTP Version Not Supported",
}

LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"


def reason_phrase(status: int) -> bytes:
    return _REASONS.get(status, b"Unknown")


def head(start_line: bytes, headers: Headers) -> bytes:
    """A start line and header fields, ending with the blank line."""
    # One list of the final size, CRLFs already in place: appending grew it a few
    # times per head (realloc + copy), and three stores per field are all that is left.
    parts = [b"\r\n"] * (4 * len(headers) + 3)
    parts[0] = start_line
    i = 2
    for name, value in headers:
        parts[i] = name
        parts[i + 1] = b": "
        parts[i + 2] = value
        i += 4
    return b"".join(parts)


def request_line(method: bytes, target: bytes) -> bytes:
    return b"%s %s HTTP/1.1" % (method, target)


def status_line(status: int, reason: bytes) -> bytes:
    return b"HTTP/1.1 %d %s" % (status, reason or reason_phrase(status))


def chunk(data: bytes) -> list[bytes]:
    """One chunk of chunked coding; extensions are never written."""
    return [b"%x\r\n" % len(data), data, b"\r\n"]
