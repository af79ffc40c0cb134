"""A second request parser over h11, behind the same ``feed`` interface.

Used by the tests (as uvicorn and aiohttp do) so that a quirk of one parser
shows up as a difference. h11 is a server state machine that will not parse
the next request until a response is sent, so this adapter answers each
request to h11 itself (to a throwaway) and cycles on. Requires ``h11``.
"""

from __future__ import annotations

import h11

from portico.errors import ProtocolError
from portico.http.events import END, Data, Event, Rejected
from portico.http.limits import HeadLimits
from portico.http.validate import build_request


class H11RequestParser:
    def __init__(self, limits: HeadLimits | None = None) -> None:
        self._limits = limits or HeadLimits()
        self._conn = h11.Connection(
            h11.SERVER,
            max_incomplete_event_size=self._limits.max_request_line + self._limits.max_head_size,
        )
        self._finished = False
        self._keep_alive = True

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def in_head(self) -> bool:
        return bool(self._conn.trailing_data[0]) and self._conn.their_state is h11.IDLE

    def feed(self, data: bytes) -> list[Event]:
        if self._finished:
            return []
        events: list[Event] = []
        open_request = -1  # index of a Request whose body is still arriving in this feed
        self._conn.receive_data(data)
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                if open_request >= 0:
                    del events[open_request:]  # as parser.py's rule 4
                events.append(Rejected(431 if status == 431 else 400, str(exc)))
                self._finished = True
                return events
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return events
            if isinstance(event, h11.Request):
                headers = list(event.headers.raw_items())
                try:
                    self._check_sizes(event.target, headers)
                    request = build_request(
                        event.method, event.target, event.http_version, headers
                    )
                except ProtocolError as exc:
                    events.append(Rejected(exc.status, str(exc)))
                    self._finished = True
                    return events
                self._keep_alive = request.keep_alive
                open_request = len(events)
                events.append(request)
            elif isinstance(event, h11.Data):
                events.append(Data(bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                events.append(END)
                open_request = -1
                if not self._keep_alive:
                    self._finished = True
                    return events
                self._conn.send(h11.Response(status_code=204, headers=[]))
                self._conn.send(h11.EndOfMessage())
                try:
                    self._conn.start_next_cycle()
                except h11.LocalProtocolError:  # h11 does no HTTP/1.0 keep-alive: stop here
                    self._finished = True
                    return events
            elif isinstance(event, h11.ConnectionClosed):
                self._finished = True
                return events

    def _check_sizes(self, target: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        limits = self._limits
        if len(target) > limits.max_request_line:
            raise ProtocolError("request line too long", 414)
        total = 0
        for name, value in headers:
            size = len(name) + len(value)
            total += size + 4
            if size > limits.max_header_size:
                raise ProtocolError("a header field is too large", 431)
        if total > limits.max_head_size or len(headers) > limits.max_headers:
            raise ProtocolError("request head too large or too many headers", 431)
