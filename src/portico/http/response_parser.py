"""The upstream side's httptools (llhttp) adapter; the rules in parser.py hold here too."""

from __future__ import annotations

import httptools

from portico.errors import ProtocolError
from portico.http.events import END, Body, Data, Event, Headers, Rejected, Response
from portico.http.heads import (
    STATUS_LINE_STARTS,
    HeadMeter,
    coalesce,
    describe,
    llhttp_version,
    version_read,
)
from portico.http.limits import RESPONSE_LIMITS, HeadLimits
from portico.http.validate import keeps_alive


class ResponseParser:
    """Upstream side: turns response bytes into Response/Data/EndOfMessage/Rejected.

    Call :meth:`expect` before each request is sent (a HEAD response has no
    body whatever its headers say, which httptools cannot be told), and
    :meth:`eof` when the upstream closes. ``clean`` turns False when the
    upstream sent bytes no request asked for; such a connection is never reused.

    ``expect(method, upgrade)`` with an upgrade asked for accepts a ``101`` whose
    ``Upgrade`` names that protocol: the parser then stops (``switched``), and
    the bytes that came after the 101's head wait in ``take_rest`` for the
    tunnel. Any other answer to such a request is read as usual, but the
    connection is never reused after it.
    """

    def __init__(self, limits: HeadLimits = RESPONSE_LIMITS) -> None:
        self._limits = limits
        self._parser = httptools.HttpResponseParser(self)
        self._events: list[Event] = []
        self._headers: Headers = []
        self._reason = b""
        self._meter = HeadMeter(limits)
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
        self._upgrade = b""  # the protocol the request in flight asked to switch to
        self.switched = False  # a 101 for that protocol came: the rest is a tunnel's
        self._rest = b""

    def expect(self, method: bytes, upgrade: bytes = b"") -> None:
        self._upgrade = upgrade
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
        except httptools.HttpParserUpgrade as upgrade:
            if self.switched:
                self._rest = data[upgrade.args[0] :] if upgrade.args else b""
            else:
                self._fail_stream("upstream switched protocols unasked")
        except httptools.HttpParserError as exc:
            if self._awaiting:
                self._fail_stream(str(self._error or describe(exc)))
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

    def take_rest(self) -> bytes:
        """After a 101: the bytes that came with its head, the tunnel's first."""
        rest, self._rest = self._rest, b""
        return rest

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
        version = version_read(self._start, 0, STATUS_LINE_STARTS) or llhttp_version(parser)
        self._start = None
        if status < 200:
            if status == 101:
                self._switch(version)
                return
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
                keep_alive = keeps_alive(value, keep_alive, version)
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
        if body is Body.UNTIL_CLOSE or self._upgrade:
            keep_alive = False  # (an upgrade refused: what the upstream reads next is unsure)
        self._body = body
        self._body_left = length if body is Body.LENGTH else 0
        self.last_keep_alive = keep_alive
        return Response(status, self._reason, version, headers, body, length, keep_alive, lnames)

    def _switch(self, version: bytes) -> None:
        """A 101: accepted only for the protocol the request asked for."""
        offered = b""
        for name, value in self._headers:
            if name.lower() == b"upgrade":
                offered = value.strip().lower()
        if not self._upgrade or offered != self._upgrade:
            self._error = ProtocolError("upstream switched protocols unasked", 502)
            raise self._error
        self.switched = True
        self._awaiting = False
        self.last_keep_alive = False
        self.clean = False  # never pooled: it is a tunnel now
        self._events.append(
            Response(101, self._reason, version, self._headers, Body.NONE, 0, False)
        )

    def _fail_stream(self, reason: str) -> None:
        self._events.append(Rejected(502, reason))
        self._awaiting = False
        self.clean = False
