"""httptools (llhttp) adapters: ``feed(bytes) -> list[Event]``.

Rules of this module:

1. Callbacks only append to ``self._events``; nothing here touches a socket.
2. llhttp runs in its default strict mode. Its leniency flags are never set.
3. llhttp has no size limits, so every head is measured here, on every read:
   a 64 KiB header dribbled in a byte at a time is refused once it passes
   the limit, not when it ends.
4. A message whose head or body fails inside one ``feed`` is taken back
   whole (its Request event is removed), so an upstream never sees any part
   of a request that turned out malformed within the bytes we had.
"""

from __future__ import annotations

from typing import Final

import httptools

from portico.errors import ProtocolError
from portico.http.events import END, Body, Data, Event, Headers, Rejected, Response
from portico.http.limits import RESPONSE_LIMITS, HeadLimits
from portico.http.validate import build_request, connection_tokens

_VERSIONS: Final = {"1.1": b"1.1", "1.0": b"1.0"}


def _version(parser: httptools.HttpRequestParser | httptools.HttpResponseParser) -> bytes:
    """httptools gives the version as a str; the common ones are not encoded again."""
    text = parser.get_http_version()
    return _VERSIONS.get(text) or text.encode("ascii")


# A version and the byte after it, as they stand in request and status lines.
_REQUEST_LINE_ENDS: Final = {b"HTTP/1.1\r": b"1.1", b"HTTP/1.0\r": b"1.0"}
_STATUS_LINE_STARTS: Final = {b"HTTP/1.1 ": b"1.1", b"HTTP/1.0 ": b"1.0"}


def _version_read(start: bytes | None, at: int, known: dict[bytes, bytes]) -> bytes | None:
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


class _HeadMeter:
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


class RequestParser:
    """Client side: turns request bytes into Request/Data/EndOfMessage/Rejected."""

    def __init__(self, limits: HeadLimits | None = None) -> None:
        self._limits = limits or HeadLimits()
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._url = b""
        self._headers: Headers = []
        self._meter = _HeadMeter(self._limits)
        self._pieces = 0  # Data events in the current feed
        self._in_head = False
        self._began_in_feed = False
        self._head_index = -1  # index in _events of the Request whose body is still open
        self._error: ProtocolError | None = None
        self._close_after = False
        self._finished = False  # a Connection: close message ended, or the stream broke
        self._body_left = 0  # of a Content-Length body: bytes still to come
        self._between = True  # the next byte fed begins a message (or a CRLF before one)
        self._start: bytes | None = None  # this read, while a message began at its first byte

    # -- public -----------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        events = self._feed(data)
        self._events = []  # the caller owns them now; keep no body bytes alive here
        self._start = None
        return events

    def close(self) -> None:
        """The connection is gone: drop the httptools parser, which holds this object's
        bound methods. Left to the cyclic GC, that cycle kept each connection's last
        buffers alive for minutes (RSS grew by tens of MiB in the soak)."""
        self._parser = None  # type: ignore[assignment]  # never fed again
        self._events = []

    def _feed(self, data: bytes) -> list[Event]:
        if self._finished:
            return []
        if self._body_left and not self._in_head:
            return self._pass_body(data)
        self._events = events = list[Event]()
        self._began_in_feed = False
        self._head_index = -1
        self._pieces = 0
        self._meter.read_size = len(data)
        self._start = data if self._between else None
        self._between = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Upgrade is not tunnelled: the request was answered as plain HTTP
            # (Upgrade is hop-by-hop and stripped), so parse on from where it ended.
            rest = data[upgrade.args[0] :] if upgrade.args else b""
            self._parser = httptools.HttpRequestParser(self)
            if rest and not self._finished:
                events.extend(self._feed(rest))
                self._events = events
        except httptools.HttpParserError as exc:
            if not self._finished:  # "data after Connection: close" is no error of ours
                self._reject(self._error or ProtocolError(_describe(exc)))
            return coalesce(events) if self._pieces > 1 else events
        if self._in_head and not self._finished:
            self._meter.head_goes_on(self._headers)
            self._check_slow_head(len(data))
        return coalesce(events) if self._pieces > 1 else events

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def in_head(self) -> bool:
        """A request head has begun and is not complete yet."""
        return self._in_head and not self._finished

    # -- httptools callbacks ----------------------------------------------------
    def on_message_begin(self) -> None:
        if self._finished:
            # llhttp's own keep-alive rules differ from ours (HTTP/1.0 with both
            # "keep-alive" and "close"): a stream we ended stays ended, however it was cut.
            raise ProtocolError("data after a message that closed the connection")
        self._in_head = True
        self._began_in_feed = True
        self._between = False
        self._url = b""
        self._headers = []
        self._meter.reset()

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_request_line:
            self._fail(ProtocolError("request line too long", 414))

    def on_header(self, name: bytes, value: bytes) -> None:
        problem = self._meter.add(name, value)
        if problem:
            self._fail(ProtocolError(problem, 431))
        if self._in_head:  # llhttp reports trailer fields here too; they are dropped
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._meter.unmetered = False  # trailer fields, if any, are measured
        parser = self._parser
        method = parser.get_method()
        version = _version_read(self._start, len(method) + len(self._url) + 2, _REQUEST_LINE_ENDS)
        self._start = None
        try:
            request = build_request(
                method,
                self._url,
                version or _version(parser),
                self._headers,
            )
        except ProtocolError as exc:
            self._fail(exc)
        self._head_index = len(self._events)
        self._events.append(request)
        self._close_after = not request.keep_alive
        self._body_left = request.content_length if request.body is Body.LENGTH else 0

    def on_body(self, body: bytes) -> None:
        self._pieces += 1
        if self._body_left:  # a Content-Length body (chunked ones are not counted)
            self._body_left -= len(body)
        self._events.append(Data(body))

    def on_message_complete(self) -> None:
        self._events.append(END)
        self._head_index = -1
        self._between = True
        if self._close_after:
            self._finished = True

    # -- internals --------------------------------------------------------------
    def _pass_body(self, data: bytes) -> list[Event]:
        """The rest of a Content-Length body, forwarded as it came: llhttp would only
        copy it. After its last byte a fresh llhttp parser takes the next request."""
        left = self._body_left
        if len(data) < left:
            self._body_left = left - len(data)
            return [Data(data)]
        self._body_left = 0
        events: list[Event] = [Data(data if len(data) == left else data[:left]), END]
        if self._close_after:
            self._finished = True
            return events
        self._parser = httptools.HttpRequestParser(self)  # the old one is mid-body
        self._between = True
        if len(data) > left:
            events += self._feed(data[left:])
        return events

    def _fail(self, exc: ProtocolError) -> None:
        self._error = exc
        raise exc

    def _reject(self, exc: ProtocolError) -> None:
        if self._head_index >= 0:
            del self._events[self._head_index :]  # rule 4: take the message back
        self._events.append(Rejected(exc.status, str(exc)))
        self._finished = True

    def _check_slow_head(self, fed: int) -> None:
        meter = self._meter
        if not self._began_in_feed:
            meter.fed += fed
        limit = self._limits.max_request_line + self._limits.max_head_size + 1024
        if meter.fed > limit:
            if not self._headers:
                self._reject(ProtocolError("request line too long", 414))
            else:
                self._reject(ProtocolError("request head too large", 431))


class ResponseParser:
    """Upstream side: turns response bytes into Response/Data/EndOfMessage/Rejected.

    Call :meth:`expect` before each request is sent (a HEAD response has no
    body whatever its headers say, which httptools cannot be told), and
    :meth:`eof` when the upstream closes. ``clean`` turns False when the
    upstream sent bytes no request asked for; such a connection is never reused.
    """

    def __init__(self, limits: HeadLimits = RESPONSE_LIMITS) -> None:
        self._limits = limits
        self._parser = httptools.HttpResponseParser(self)
        self._events: list[Event] = []
        self._headers: Headers = []
        self._reason = b""
        self._meter = _HeadMeter(limits)
        self._pieces = 0  # Data events in the current feed
        self._error: ProtocolError | None = None
        self._awaiting = False  # a request is out and its final response not complete
        self._head_request = False
        self._fresh_parser_needed = False
        self._body = Body.NONE
        self._in_head = False
        self._interim = False
        self._began_in_feed = False
        self._body_left = 0  # of a Content-Length body: bytes still to come
        self.clean = True
        self.received = 0  # bytes of the current response so far
        self.last_keep_alive = False  # whether the last final response allows reuse
        self._between = True  # as RequestParser's
        self._start: bytes | None = None

    def expect(self, method: bytes) -> None:
        if self._fresh_parser_needed:
            self._parser = httptools.HttpResponseParser(self)
            self._fresh_parser_needed = False
            self._between = True
        self._awaiting = True
        self._head_request = method == b"HEAD"
        self._body = Body.NONE
        self._body_left = 0
        self.received = 0

    def feed(self, data: bytes) -> list[Event]:
        events = self._feed(data)
        self._events = []
        self._start = None
        return events

    def close(self) -> None:
        """As RequestParser.close: break the cycle with the httptools parser."""
        self._parser = None  # type: ignore[assignment]  # never fed again
        self._events = []

    def _feed(self, data: bytes) -> list[Event]:
        self._events = events = list[Event]()
        if not self._awaiting:
            self.clean = False
            return events
        self.received += len(data)
        if self._body_left and not self._in_head:
            return self._pass_body(data)
        self._began_in_feed = False
        self._pieces = 0
        self._meter.read_size = len(data)
        self._start = data if self._between else None
        self._between = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail_stream("upstream switched protocols unasked")
        except httptools.HttpParserError as exc:
            if self._awaiting:
                self._fail_stream(str(self._error or _describe(exc)))
            else:
                self.clean = False  # trailing garbage after a complete response
        if self._body_left and self._awaiting and not self._in_head:
            # The head is parsed: the rest of a Content-Length body bypasses llhttp,
            # which would only copy it (see _pass_body).
            self._fresh_parser_needed = True
        if self._in_head and self._awaiting:
            self._meter.head_goes_on(self._headers)
            if not self._began_in_feed:
                self._meter.fed += len(data)
            if self._meter.fed > self._limits.max_head_size + 1024:
                self._fail_stream("upstream response head too large")
        return coalesce(events) if self._pieces > 1 else events

    def _pass_body(self, data: bytes) -> list[Event]:
        """Body bytes of a Content-Length response, forwarded as they came: no copy by
        llhttp, no callback (parser work per MiB in 64 KiB reads: 19.7 -> 4.3 us)."""
        left = self._body_left
        if len(data) <= left:
            self._body_left = left - len(data)
            events: list[Event] = [Data(data)]
        else:
            self._body_left = 0
            self.clean = False  # bytes after the response that nobody asked for
            events = [Data(data[:left])]
        if not self._body_left:
            events.append(END)
            self._awaiting = False
        return events

    def eof(self) -> list[Event]:
        """The upstream closed. Ends a close-delimited body; anything else is a fault."""
        self.clean = False
        if not self._awaiting:
            return []
        self._awaiting = False
        if self._body is Body.UNTIL_CLOSE and not self._in_head:
            return [END]
        if self.received == 0:
            return [Rejected(502, "upstream closed the connection without responding")]
        return [Rejected(502, "upstream closed the connection mid-response")]

    # -- httptools callbacks ----------------------------------------------------
    def on_message_begin(self) -> None:
        if not self._awaiting:
            self.clean = False
            raise ProtocolError("response bytes nobody asked for")
        self._in_head = True
        self._began_in_feed = True
        self._between = False
        self._headers = []
        self._reason = b""
        self._meter.reset()

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        problem = self._meter.add(name, value)
        if problem:
            self._error = ProtocolError(f"upstream response: {problem}", 502)
            raise self._error
        if self._in_head:
            self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._meter.unmetered = False  # trailer fields, if any, are measured
        parser = self._parser
        status = parser.get_status_code()
        version = _version_read(self._start, 0, _STATUS_LINE_STARTS) or _version(parser)
        self._start = None
        if status < 200:
            if status == 101:
                self._error = ProtocolError("upstream switched protocols unasked", 502)
                raise self._error
            self._interim = True
            self._events.append(
                Response(status, self._reason, version, self._headers, Body.NONE, 0, True)
            )
            return
        response = self._frame(status, version)
        self._events.append(response)
        if self._head_request:
            self._events.append(END)
            self._awaiting = False
            self._fresh_parser_needed = True  # llhttp may still be waiting for a body

    def on_body(self, body: bytes) -> None:
        if not self._awaiting:  # a HEAD response came with a body
            self.clean = False
            return
        self._pieces += 1
        if self._body_left:  # a Content-Length body (chunked ones are not counted)
            self._body_left -= len(body)
        self._events.append(Data(body))

    def on_message_complete(self) -> None:
        self._between = True
        if self._interim:
            self._interim = False
            return
        if not self._awaiting:
            return  # the end of a body that came with a HEAD response
        self._events.append(END)
        self._awaiting = False

    # -- internals --------------------------------------------------------------
    def _frame(self, status: int, version: bytes) -> Response:
        lengths: list[bytes] = []
        codings: list[bytes] = []
        keep_alive = version == b"1.1"
        headers = self._headers
        lnames = [name.lower() for name, _ in headers]
        for i, (_, value) in enumerate(headers):  # not zip: mypyc compiles this loop natively
            lname = lnames[i]
            if lname == b"content-length":
                lengths.append(value)
            elif lname == b"transfer-encoding":
                codings.append(value)
            elif lname == b"connection":
                tokens = connection_tokens(value)
                if b"close" in tokens:
                    keep_alive = False
                elif b"keep-alive" in tokens:
                    keep_alive = keep_alive or version == b"1.0"
        body = Body.UNTIL_CLOSE
        length = 0
        if codings:
            if len(codings) > 1 or codings[0].strip().lower() != b"chunked":
                self._error = ProtocolError("upstream used a transfer coding besides chunked", 502)
                raise self._error
            body = Body.CHUNKED
        elif lengths:
            if len(lengths) > 1 or not lengths[0].isdigit():  # bytes: ASCII digits only
                self._error = ProtocolError("upstream sent an invalid Content-Length", 502)
                raise self._error
            length = int(lengths[0])
            body = Body.LENGTH
        if self._head_request or status in (204, 304) or (body is Body.LENGTH and length == 0):
            body = Body.NONE
        if body is Body.UNTIL_CLOSE:
            keep_alive = False
        self._body = body
        self._body_left = length if body is Body.LENGTH else 0
        self.last_keep_alive = keep_alive
        return Response(status, self._reason, version, headers, body, length, keep_alive, lnames)

    def _fail_stream(self, reason: str) -> None:
        self._events.append(Rejected(502, reason))
        self._awaiting = False
        self.clean = False


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return f"malformed HTTP: {text}"
