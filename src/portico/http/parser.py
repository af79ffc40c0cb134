"""httptools (llhttp) adapters: ``feed(bytes) -> list[Event]``. The request side is
here, the response side in response_parser.py, what they share in heads.py.

Rules of both:

1. Callbacks only append to ``self._events``; nothing here touches a socket.
2. llhttp runs in its default strict mode. Its leniency flags are never set.
3. llhttp has no size limits, so every head is measured here, on every read:
   a 64 KiB header dribbled in a byte at a time is refused once it passes
   the limit, not when it ends.
4. A message whose head or body fails inside one ``feed`` is taken back
   whole (its Request event is removed), so an upstream never sees any part
   of a request that turned out malformed within the bytes we had.
5. After an upgrade request (``Request.upgrade``) nothing more is parsed: the
   bytes that follow it are held, unread, for the tunnel it may become
   (``take_held``), and dropped with the connection if it does not.
"""

from __future__ import annotations

from typing import NoReturn

import httptools

from portico.errors import ProtocolError
from portico.http.events import END, Body, Data, Event, Headers, Rejected
from portico.http.heads import (
    REQUEST_LINE_ENDS,
    HeadMeter,
    coalesce,
    describe,
    llhttp_version,
    version_read,
)
from portico.http.limits import HeadLimits
from portico.http.validate import build_request


class RequestParser:
    """Client side: turns request bytes into Request/Data/EndOfMessage/Rejected."""

    def __init__(self, limits: HeadLimits | None = None) -> None:
        self._limits = limits or HeadLimits()
        self._parser = httptools.HttpRequestParser(self)
        self._events: list[Event] = []
        self._url = b""
        self._headers: Headers = []
        self._meter = HeadMeter(self._limits)
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
        self._upgrading = False  # the current request asks for an upgrade
        self._held: list[bytes] | None = None  # bytes after an upgrade request (rule 5)

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
            if self._held is not None:
                self._held.append(data)
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
            rest = data[upgrade.args[0] :] if upgrade.args else b""
            if self._body_left and events and events[-1] is END:
                # llhttp ends an upgrade request at its head, body or not: the body
                # (Content-Length; a chunked one was refused) is read here, then held.
                events.pop()
                self._finished = False
                if rest:
                    events.extend(self._pass_body(rest))
                return events
            if self._upgrading:
                self._hold(rest)
                return events
            # llhttp saw an upgrade that build_request did not (HTTP/1.0): plain HTTP,
            # so parse on from where it ended.
            self._parser = httptools.HttpRequestParser(self)
            if rest and not self._finished:
                events.extend(self._feed(rest))
                self._events = events
        except httptools.HttpParserError as exc:
            if not self._finished:  # "data after Connection: close" is no error of ours
                self._reject(self._error or ProtocolError(describe(exc)))
            return coalesce(events) if self._pieces > 1 else events
        if self._in_head and not self._finished:
            self._meter.head_goes_on(self._headers)
            self._check_slow_head(len(data))
        return coalesce(events) if self._pieces > 1 else events

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def held(self) -> int:
        """How many bytes are held after an upgrade request (rule 5)."""
        return sum(map(len, self._held)) if self._held else 0

    def take_held(self) -> bytes:
        """The bytes that followed an upgrade request, for its tunnel; held no longer."""
        held = b"".join(self._held) if self._held else b""
        self._held = None
        return held

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
        version = version_read(self._start, len(method) + len(self._url) + 2, REQUEST_LINE_ENDS)
        self._start = None
        try:
            request = build_request(
                method,
                self._url,
                version or llhttp_version(parser),
                self._headers,
            )
        except ProtocolError as exc:
            self._fail(exc)
        self._head_index = len(self._events)
        self._events.append(request)
        self._upgrading = bool(request.upgrade)
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
            if self._upgrading:
                self._hold(data[left:])
            return events
        self._parser = httptools.HttpRequestParser(self)  # the old one is mid-body
        self._between = True
        if len(data) > left:
            events += self._feed(data[left:])
        return events

    def _hold(self, rest: bytes) -> None:
        self._finished = True
        self._held = [rest] if rest else []

    def _fail(self, exc: ProtocolError) -> NoReturn:
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
