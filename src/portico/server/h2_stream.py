"""One HTTP/2 stream as an exchange's ``Downstream``, and the mapping of its fields.

A stream's request becomes the same ``Request`` an HTTP/1.1 head does (validated by
``build_request``), so every phase, header rule and limit applies unchanged; its
response goes out as HEADERS and DATA frames through the connection (server/h2.py),
which owns the h2 state machine, the socket and the flow-control windows.

Rules:

1. Fields that are connection-specific in HTTP/1.1 never cross (RFC 9113 §8.2.2):
   ``Connection`` and the fields it names, ``Keep-Alive``, ``Proxy-Connection``,
   ``Transfer-Encoding``, ``Upgrade``, ``TE``; cookie crumbs are joined with "; "
   (§8.2.3) and ``:authority`` becomes ``Host`` (§8.3.1).
2. Request DATA is acknowledged (WINDOW_UPDATE for the stream) only while the
   exchange is not holding the body back: a full upstream pauses the stream's window,
   never the connection's, so one slow upstream stalls only its own stream.
3. The response body waits in ``out`` for the stream's window; past ``HIGH_WATER``
   the exchange stops reading its upstream (``on_client_writable(False)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from portico.errors import ProtocolError
from portico.http.events import Body, Headers, Request, Response
from portico.http.validate import build_request, connection_tokens
from portico.proxy.downstream import Downstream
from portico.proxy.errorpage import error_fields, wants_json
from portico.proxy.framing import declared_length

if TYPE_CHECKING:
    from portico.errors import ProxyError
    from portico.proxy.exchange import Exchange
    from portico.server.h2 import H2Connection

HIGH_WATER: Final = 64 * 1024  # response bytes held for one stream before its upstream pauses
LOW_WATER: Final = 16 * 1024
ACK_STEP: Final = 16 * 1024  # request bytes taken before the stream's window is reopened
# Connection-specific in HTTP/1.1: never forwarded either way (RFC 9113 §8.2.2).
CONNECTION_SPECIFIC: Final = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te",
})
_COLON: Final = ord(":")


def request_from_fields(fields: list[tuple[bytes, bytes]], end_stream: bool) -> Request:
    """The HTTP/1.1 request a HEADERS block stands for; ProtocolError (with the status to
    answer) when it is one portico refuses. h2 has checked the pseudo-header rules."""
    method = path = authority = b""
    host = b""
    headers: Headers = [(b"host", b"")]  # its value is set below, from :authority or Host
    cookies: list[bytes] = []
    for name, value in fields:
        if name[0] == _COLON:
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name == b":authority":
                authority = value
            elif name == b":protocol":
                raise ProtocolError("extended CONNECT (RFC 8441) is not supported", 501)
        elif name == b"cookie":
            cookies.append(value)
        elif name == b"host":
            host = value
        elif name not in CONNECTION_SPECIFIC:  # h2 refused them; "te: trailers" is dropped
            headers.append((name, value))
    if method == b"CONNECT":
        raise ProtocolError("CONNECT is not supported by a reverse proxy", 405)
    host = authority or host
    if not host:
        raise ProtocolError("request without :authority or Host")
    if b"@" in host:
        raise ProtocolError(":authority with userinfo")
    headers[0] = (b"host", host)
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    request = build_request(method, path, b"1.1", headers)
    if end_stream:
        request.body = Body.NONE
        request.content_length = 0
    elif request.body is Body.NONE and b"content-length" not in request.lnames:
        request.body = Body.CHUNKED  # a body of unknown length: chunked to the upstream
    request.version = b"2.0"  # for the access log; nothing else reads it for HTTP/2
    request.keep_alive = True
    return request


def response_fields(status: int, headers: Headers) -> Headers:
    """``:status`` and the end-to-end fields, names lower-cased (HTTP/2 wants them so)."""
    named: list[bytes] = []
    for name, value in headers:
        if name.lower() == b"connection":
            named += connection_tokens(value)
    out: Headers = [(b":status", b"%d" % status)]
    for name, value in headers:
        lname = name.lower()
        if lname not in CONNECTION_SPECIFIC and lname not in named:
            out.append((lname, value))
    return out


class H2Stream(Downstream):
    """The client side of one exchange on an HTTP/2 connection."""

    def __init__(self, conn: H2Connection, stream_id: int) -> None:
        super().__init__()
        self.conn = conn
        self.stream_id = stream_id
        self.request: Request | None = None
        self.exchange: Exchange | None = None
        self.out = bytearray()  # response body waiting for the flow-control window
        self.headers_sent = False
        self.end_pending = False  # the response is complete once ``out`` is sent
        self.end_sent = False
        self.finished_exchange = False  # the exchange is over (its ``finished`` came)
        self.body_done = True  # the client sent END_STREAM
        self.ended_on_headers = False  # ... on the HEADERS frame (no body at all)
        self.reset = False  # RST_STREAM went either way: nothing more is sent
        self.upstream_paused = False  # on_client_writable(False) was said
        self.unacked = 0  # request bytes taken but not yet given back to the window
        self._paused_for: set[object] = set()

    # -- request body flow control ----------------------------------------------------
    @property
    def reading_paused(self) -> bool:
        return bool(self._paused_for)

    def pause_reading(self, reason: object) -> None:
        self._paused_for.add(reason)

    def resume_reading(self, reason: object) -> None:
        if reason in self._paused_for:
            self._paused_for.discard(reason)
            if not self._paused_for and self.unacked:
                self.acknowledge(0)
                self.conn.write_soon()

    def acknowledge(self, taken: int) -> None:
        """``taken`` more request bytes went on; give the window back unless held."""
        self.unacked += taken
        if not self._paused_for and (self.unacked >= ACK_STEP or taken == 0):
            self.conn.open_window(self, self.unacked)
            self.unacked = 0

    def accept_body(self) -> None:
        request = self.request
        if request is not None and request.expect_continue and not self.body_done:
            self.conn.send_headers(self, [(b":status", b"100")], False)

    # -- response -----------------------------------------------------------------------
    def start_response(self, response: Response, headers: Headers) -> None:
        fields = response_fields(response.status, headers)
        request = self.request
        if (request is not None and request.method == b"HEAD") or response.status == 304:
            length = declared_length(response.headers)
            if length is not None:
                fields.append((b"content-length", length))
        elif response.body is Body.LENGTH:
            fields.append((b"content-length", b"%d" % response.content_length))
        elif response.body is Body.NONE and response.status != 204:
            fields.append((b"content-length", b"0"))
        self.conn.send_headers(self, fields, False)
        self.headers_sent = True

    def send_informational(self, response: Response) -> None:
        """1xx but 100 (ours to send) and 101 (no upgrade in HTTP/2) are relayed."""
        if response.status not in (100, 101):
            self.conn.send_headers(self, response_fields(response.status, response.headers),
                                   False)

    def send_data(self, data: bytes) -> None:
        self.out += data

    def flush(self) -> None:
        self.conn.pump(self)
        self.conn.write_soon()

    def end(self) -> None:
        self.end_pending = True
        self.flush()

    def send_error(self, error: ProxyError, request_id: bytes) -> int:
        request = self.request
        as_json = request is not None and wants_json(request.get(b"accept"))
        headers, body = error_fields(error.status, error.layer, str(error), request_id,
                                     as_json=as_json, retry_after=error.retry_after)
        head_only = request is not None and request.method == b"HEAD"
        self.conn.send_headers(self, response_fields(error.status, headers), head_only)
        self.headers_sent = True
        if head_only:
            self.end_sent = True
            self.conn.write_soon()
            return 0
        self.out += body
        self.end()
        return len(body)

    def send_answer(self, status: int, headers: Headers) -> None:
        headers.append((b"content-length", b"0"))
        self.conn.send_headers(self, response_fields(status, headers), True)
        self.headers_sent = True
        self.end_sent = True
        self.conn.write_soon()

    def finished(self, clean: bool) -> None:
        self.finished_exchange = True
        self.conn.stream_finished(self, clean)
