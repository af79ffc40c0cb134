"""An HTTP/2 client connection (RFC 9113) on the ``h2`` library: streams in, exchanges out.

``ClientConnection`` (server/protocol.py) hands its transport over at the start: on
TLS when ALPN chose ``h2``, in cleartext when the first bytes are the HTTP/2 preface
(h2c with prior knowledge). Each stream is an ``H2Stream`` (server/h2_stream.py), the
``Downstream`` of one ``Exchange``, which proxies it over its own HTTP/1.1 upstream
connection from the pool, with every phase, rule and limit of HTTP/1.1.

Rules:

1. h2 decides the protocol; a connection error it raises becomes GOAWAY and a close.
   Streams opened and reset in the same read never reach an upstream: exchanges start
   after the whole read is processed.
2. The connection window is given back as DATA arrives (it is shared); each stream's
   window only as its upstream takes the bytes (h2_stream.py, rule 2). Memory held for
   request bodies is therefore bounded by streams x the initial window.
3. Abuse is counted per connection, in two token buckets: streams the client resets
   while they are in flight (rapid reset), and frames that do no work (SETTINGS, PING,
   PRIORITY, empty DATA, unknown frames). An empty bucket is GOAWAY(ENHANCE_YOUR_CALM).
   h2 itself bounds CONTINUATION (64 frames) and header lists (MAX_HEADER_LIST_SIZE);
   its CONTINUATION error is answered with ENHANCE_YOUR_CALM too.
4. A graceful stop or reload (``close_if_idle``) sends GOAWAY(NO_ERROR) with the last
   stream taken; streams opened after it are refused (REFUSED_STREAM, safe to retry)
   and the connection closes when the last one ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final, cast

from h2.config import H2Configuration
from h2.connection import H2Connection as H2State
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    UnknownFrameReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError as H2ProtocolError
from h2.exceptions import StreamClosedError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from portico.errors import Layer, ProtocolError, ProxyError
from portico.proxy.dispatch import open_exchange
from portico.proxy.exchange import Exchange
from portico.proxy.gateway import Gateway
from portico.server.h2_stream import H2Stream, request_from_fields

HIGH_WATER: Final = 256 * 1024  # the socket's write buffer (many streams share it)
LOW_WATER: Final = 64 * 1024
STREAM_WINDOW: Final = 256 * 1024  # each stream's initial receive window
CONTROL_BURST: Final = 1000  # frames that do no work, at once
CONTROL_RATE: Final = 100.0  # ... and per second after that
RESET_RATE_SHARE: Final = 0.1  # in-flight resets per second, as a share of the stream limit
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class TokenBucket:
    """``burst`` at once, then ``rate`` per second (on the gateway's coarse clock)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, burst: float, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        """One token, if there is one left."""
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        self.tokens -= 1
        return self.tokens >= 0


class H2Connection(asyncio.Protocol):
    def __init__(self, gw: Gateway, scheme: bytes) -> None:
        self.gw = gw
        self.scheme = scheme
        # Outbound fields are portico's own, lower-cased and filtered (h2_stream.py): h2's
        # second check of them would cost a pass per response. Inbound ones are checked
        # (RFC 9113 8.2), not normalized: h2_stream.py joins the cookie crumbs itself.
        self.h2 = H2State(H2Configuration(client_side=False, header_encoding=None,
                                          validate_outbound_headers=False,
                                          normalize_outbound_headers=False,
                                          normalize_inbound_headers=False))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        self.remote_addr = b"-"
        self.trusted = False
        self.local_authority = b""
        self._closing = False
        self._draining = False  # GOAWAY(NO_ERROR) sent: no new streams
        self._last_stream = 0  # the highest stream id taken
        self._write_paused = False
        self._write_paused_at = 0.0
        self._blocked: set[H2Stream] = set()  # streams with output waiting for a window
        self._conn_unacked = 0
        self._write_soon = False  # a write_out is scheduled for this loop iteration
        settings = gw.http2
        now = gw.now
        self._max_streams = settings.max_concurrent_streams
        self._control = TokenBucket(CONTROL_BURST, CONTROL_RATE, now)
        self._resets = TokenBucket(self._max_streams, self._max_streams * RESET_RATE_SHARE, now)
        self._idle_deadline = now + gw.timeouts.head_timeout

    # -- what the gateway asks of a connection ------------------------------------------
    @property
    def tunnel(self) -> None:
        """No upgrade tunnels on HTTP/2 (RFC 8441's extended CONNECT is not offered)."""
        return None

    @property
    def exchange(self) -> Exchange | None:
        """One exchange in flight, if any (the gateway counts connections with one)."""
        for stream in self.streams.values():
            if stream.exchange is not None and not stream.finished_exchange:
                return stream.exchange
        return None

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if peer:
            self.remote_addr = str(peer[0]).encode("ascii")
            self.trusted = self.gw.forwarding.trust.trusts(str(peer[0]))
        if local:
            host = str(local[0])
            host = f"[{host}]" if ":" in host else host
            self.local_authority = f"{host}:{local[1]}".encode("ascii")
        self.gw.connections.add(self)
        h2 = self.h2
        h2.local_settings = Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: self._max_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            SettingCodes.MAX_HEADER_LIST_SIZE: self.gw.head_limits.max_head_size,
            SettingCodes.ENABLE_PUSH: 0,
        })
        h2.initiate_connection()
        # The connection window covers every stream's: it never stalls one for another.
        h2.increment_flow_control_window(self._max_streams * STREAM_WINDOW)
        self.write_out()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            events = self.h2.receive_data(data)
        except H2ProtocolError as exc:
            code = exc.error_code
            reason = str(exc).lower()
            if "too many continuation" in reason:  # h2 caps a header block at 64
                code = ErrorCodes.ENHANCE_YOUR_CALM
            elif "decoding header block" in reason:
                code = ErrorCodes.COMPRESSION_ERROR  # RFC 9113 4.3
            self.h2.clear_outbound_data_buffer()  # h2's own GOAWAY: ours says why
            self._goaway(code)
            return
        starting: list[H2Stream] = []
        for event in events:
            if self._closing:
                return
            kind = type(event)
            if kind is DataReceived:
                self._on_data(cast(DataReceived, event))
            elif kind is RequestReceived:
                stream = self._on_request(cast(RequestReceived, event))
                if stream is not None:
                    starting.append(stream)
            elif kind is StreamEnded:
                self._on_stream_ended(cast(StreamEnded, event).stream_id)
            elif kind is WindowUpdated:
                self._on_window(cast(WindowUpdated, event).stream_id)
            elif kind is StreamReset:
                self._on_reset(cast(StreamReset, event).stream_id)
            elif kind is ConnectionTerminated:
                self._draining = True  # the client's GOAWAY: finish what is open, then close
            elif kind is RemoteSettingsChanged:
                self._calm()
                if SettingCodes.INITIAL_WINDOW_SIZE in cast(RemoteSettingsChanged,
                                                           event).changed_settings:
                    self._on_window(0)
            elif kind in (PingReceived, PriorityUpdated, UnknownFrameReceived):
                self._calm()
        for stream in starting:  # rule 1: those reset in the same read are gone by now
            exchange = stream.exchange
            if exchange is not None and not stream.reset and not self._closing:
                exchange.start()
                if stream.ended_on_headers and not stream.reset:
                    exchange.on_request_end()
        if self._draining and not self.streams:
            self._close_now()
        self.write_out()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.gw.connections.discard(self)
        streams = list(self.streams.values())
        self.streams.clear()
        self._blocked.clear()
        for stream in streams:
            stream.reset = True
            if stream.exchange is not None and not stream.finished_exchange:
                stream.exchange.abort()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._write_paused_at = self.gw.now

    def resume_writing(self) -> None:
        self._write_paused = False
        for stream in list(self._blocked):
            self.pump(stream)
        self.write_out()

    # -- incoming frames -----------------------------------------------------------------
    def _on_request(self, event: RequestReceived) -> H2Stream | None:
        sid = event.stream_id
        if self._draining:
            self._refuse(sid, ErrorCodes.REFUSED_STREAM)
            return None
        self._last_stream = max(self._last_stream, sid)
        self._idle_deadline = 0.0
        stream = H2Stream(self, sid)
        stream.scheme = self.scheme
        stream.remote_addr = self.remote_addr
        stream.trusted = self.trusted
        stream.local_authority = self.local_authority
        stream.body_done = stream.ended_on_headers = event.stream_ended is not None
        self.streams[sid] = stream
        try:
            request = request_from_fields(event.headers, stream.body_done)
        except ProtocolError as exc:
            self._answer_malformed(stream, exc)
            return None
        stream.request = request
        exchange = open_exchange(stream, request, self.gw)
        if exchange is None:
            return None  # answered already (a redirect, 404, 413)
        stream.exchange = exchange
        return stream

    def _answer_malformed(self, stream: H2Stream, exc: ProtocolError) -> None:
        request_id = self.gw.request_id()
        sent = stream.send_error(ProxyError(exc.status, Layer.CLIENT, str(exc)),
                                 request_id)
        self.gw.log_answer((self.remote_addr, b"-", b"-", b"2.0", exc.status, sent,
                            b"", b"", request_id, b"", b""), -1, 0.0)
        stream.finished(True)

    def _on_data(self, event: DataReceived) -> None:
        length = event.flow_controlled_length
        self._conn_unacked += length
        if self._conn_unacked >= STREAM_WINDOW:
            self.h2.increment_flow_control_window(self._conn_unacked)
            self._conn_unacked = 0
        if not event.data and event.stream_ended is None:
            self._calm()  # an empty DATA frame does no work
        stream = self.streams.get(event.stream_id)
        if stream is None or stream.exchange is None or stream.finished_exchange:
            if length and stream is not None and not stream.reset:
                self.open_window(stream, length)  # answered early: the rest is discarded
            return
        if event.data:
            stream.exchange.on_request_data(event.data)
        if not stream.reset:
            stream.acknowledge(length)

    def _on_stream_ended(self, sid: int) -> None:
        stream = self.streams.get(sid)
        if stream is None or stream.body_done:
            return
        stream.body_done = True
        exchange = stream.exchange
        if exchange is not None and not stream.finished_exchange:
            exchange.on_request_end()
        self._retire_if_done(stream)

    def _on_window(self, sid: int) -> None:
        if sid == 0:
            for blocked in list(self._blocked):
                self.pump(blocked)
        else:
            stream = self.streams.get(sid)
            if stream is not None:
                self.pump(stream)

    def _on_reset(self, sid: int) -> None:
        """The client cancelled a stream: its upstream connection is dropped, not pooled."""
        stream = self.streams.pop(sid, None)
        if stream is None:
            return
        stream.reset = True
        self._blocked.discard(stream)
        if stream.exchange is not None and not stream.finished_exchange:
            stream.exchange.abort()
            if not self._resets.take(self.gw.now):
                self._goaway(ErrorCodes.ENHANCE_YOUR_CALM)
        self._became_idle()

    def _calm(self) -> None:
        if not self._control.take(self.gw.now):
            self._goaway(ErrorCodes.ENHANCE_YOUR_CALM)

    # -- outgoing frames ------------------------------------------------------------------
    def send_headers(self, stream: H2Stream, fields: list[tuple[bytes, bytes]],
                     end: bool) -> None:
        if stream.reset or self._closing:
            return
        try:
            self.h2.send_headers(stream.stream_id, fields, end_stream=end)
        except StreamClosedError:
            stream.reset = True

    def open_window(self, stream: H2Stream, length: int) -> None:
        if length and not stream.body_done and not stream.reset and not self._closing:
            with contextlib.suppress(StreamClosedError):
                self.h2.increment_flow_control_window(length, stream_id=stream.stream_id)

    def pump(self, stream: H2Stream) -> None:
        """Send what ``stream``'s window (and the socket) allows of its output."""
        if stream.reset or self._closing:
            self._blocked.discard(stream)
            return
        out = stream.out
        h2 = self.h2
        sid = stream.stream_id
        try:
            while out and not self._write_paused:
                size = min(len(out), h2.local_flow_control_window(sid),
                           h2.max_outbound_frame_size)
                if size <= 0:
                    break
                last = stream.end_pending and size == len(out)
                h2.send_data(sid, bytes(out[:size]), end_stream=last)
                del out[:size]
                stream.end_sent = last
            if stream.end_pending and not out and not stream.end_sent:
                h2.end_stream(sid)
                stream.end_sent = True
        except StreamClosedError:
            stream.reset = True
            out.clear()
        if out:
            self._blocked.add(stream)
        else:
            self._blocked.discard(stream)
        exchange = stream.exchange
        if exchange is not None and not stream.finished_exchange:
            if len(out) > HIGH_WATER // 4 and not stream.upstream_paused:
                stream.upstream_paused = True
                exchange.on_client_writable(False)
            elif len(out) <= LOW_WATER // 4 and stream.upstream_paused:
                stream.upstream_paused = False
                exchange.on_client_writable(True)
        if stream.end_sent or stream.reset:
            self._retire_if_done(stream)

    def write_soon(self) -> None:
        """Write at the end of this loop iteration: the responses of many streams, read
        from their upstreams in one iteration, leave in one write."""
        if not self._write_soon:
            self._write_soon = True
            self.gw.loop.call_soon(self._write_now)

    def _write_now(self) -> None:
        self._write_soon = False
        self.write_out()

    def write_out(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self._closing:
            self.transport.write(data)

    # -- stream endings -----------------------------------------------------------------
    def stream_finished(self, stream: H2Stream, clean: bool) -> None:
        """The exchange is over. Cut short (no complete response): the stream is reset."""
        if not stream.end_pending and not stream.end_sent and not stream.reset:
            self._refuse(stream.stream_id, ErrorCodes.INTERNAL_ERROR if stream.headers_sent
                         else ErrorCodes.NO_ERROR)
            stream.reset = True
        self._retire_if_done(stream)
        self.write_soon()

    def _retire_if_done(self, stream: H2Stream) -> None:
        """Forget a stream whose response is sent and exchange over; one whose request
        body is still coming is reset with NO_ERROR (RFC 9113 §8.1)."""
        if not stream.finished_exchange or not (stream.end_sent or stream.reset):
            return
        if not stream.body_done and not stream.reset:
            self._refuse(stream.stream_id, ErrorCodes.NO_ERROR)
            stream.reset = True
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
            self._blocked.discard(stream)
            self._became_idle()

    def _became_idle(self) -> None:
        if not self.streams:
            if self._draining:
                self._close_now()
            else:
                self._idle_deadline = self.gw.now + self.gw.timeouts.keepalive_timeout

    def _refuse(self, sid: int, code: ErrorCodes) -> None:
        with contextlib.suppress(StreamClosedError, H2ProtocolError):
            self.h2.reset_stream(sid, code)

    # -- closing ------------------------------------------------------------------------
    def _goaway(self, code: ErrorCodes) -> None:
        """A connection error: GOAWAY with ``code``, every stream dropped, then close."""
        if self._closing:
            return
        with contextlib.suppress(H2ProtocolError):
            self.h2.close_connection(code, last_stream_id=self._last_stream)
        self.write_out()
        self._close_now()

    def _close_now(self) -> None:
        if not self._closing and self.transport is not None:
            if self._draining:
                with contextlib.suppress(H2ProtocolError):
                    self.h2.close_connection(ErrorCodes.NO_ERROR,
                                             last_stream_id=self._last_stream)
                self.write_out()
            self._closing = True
            self.transport.close()

    def close_if_idle(self, grace: float = 0.0) -> None:
        """A drain (stop or reload): GOAWAY now, open streams finish, then close."""
        if self._draining or self._closing or self.transport is None:
            return
        self._draining = True
        goaway = GoAwayFrame(0, last_stream_id=self._last_stream,
                             error_code=ErrorCodes.NO_ERROR)
        self.write_out()
        self.transport.write(goaway.serialize())
        if not self.streams:
            self._close_now()

    def abort(self) -> None:
        if self.transport is not None:
            self._closing = True
            self.transport.abort()

    def check(self, now: float) -> None:
        if self._closing:
            return
        if self._write_paused and now - self._write_paused_at > self.gw.timeouts.send_timeout:
            self.abort()  # the client stopped reading
            return
        for stream in list(self.streams.values()):
            exchange = stream.exchange
            if exchange is not None and not stream.finished_exchange:
                exchange.check(now)
        if not self.streams and self._idle_deadline and now > self._idle_deadline:
            self._draining = True
            self._close_now()
