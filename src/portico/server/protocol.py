"""An HTTP/1.1 client connection: the transport, the sans-IO parser, and the wire form.

Its ``Http1Response`` is the ``Downstream`` (``proxy/downstream.py``) of the
exchange it is serving, and makes every HTTP/1.1 decision for it: response framing and chunking,
``100 Continue``, which 1xx to relay, the error page's bytes, and whether the
connection stays open (``Connection``, the statuses that always close).

Rules:

1. At most one exchange is active; pipelined requests wait in ``_pending``
   in order, and reading pauses while they wait (answered in order, bounded).
2. Reading is paused for named reasons (a full upstream, a waiting pipeline,
   a connect in progress) and resumes only when none is left.
3. One deadline at a time: head (408), body (408, via the exchange),
   upstream (504, via the exchange), idle keep-alive (silent close).
4. One whole bodiless request with nothing queued skips ``_pending``: it goes
   through the same ``_start``, and ``finished`` → ``_dispatch`` as any other.
5. After a 101 the connection belongs to a tunnel (``proxy/tunnel.py``), which
   becomes its transport's protocol; this object only stays counted in
   ``gw.connections`` (for the drain and ``status``) until the tunnel closes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, cast

from portico.errors import Layer, ProxyError
from portico.http import writer
from portico.http.events import END, Body, Data, Event, Headers, Rejected, Request, Response
from portico.http.parser import RequestParser
from portico.proxy.dispatch import open_exchange
from portico.proxy.downstream import Downstream, LocalBody
from portico.proxy.errorpage import error_page, error_reply
from portico.proxy.exchange import Exchange
from portico.proxy.framing import connection_field, frame_response
from portico.proxy.gateway import Gateway
from portico.proxy.tunnel import Tunnel

HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
_PIPELINE: Final = "pipeline"
_UPGRADE: Final = "upgrade"  # bytes after an upgrade request wait for its answer
# An error answer with one of these statuses always closes: what follows may be garbage.
CLOSE_AFTER: Final = frozenset({400, 408, 413, 414, 431, 505})
# The HTTP/2 connection preface (h2c with prior knowledge); server/h2.py is imported at
# the first HTTP/2 connection only, so an HTTP/1.1-only server never loads h2.
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_NO_REQUEST: Final = Request(b"GET", b"/", b"1.1", [], b"", Body.NONE, 0, False, False)


class ClientConnection(asyncio.Protocol):
    def __init__(self, gw: Gateway, scheme: bytes = b"http") -> None:
        self.gw = gw
        self.parser = RequestParser(gw.head_limits)
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self._reading: Exchange | None = None  # whose request body is arriving
        self.local_body: LocalBody | None = None  # a static file being sent (proxy/static.py)
        self._pending: deque[Event] = deque()
        self._paused_for: set[object] = set()
        self._dispatching = False
        self._closing = False
        self._write_paused = False
        self._write_paused_at = 0.0
        self._requests = 0
        self._head_deadline = 0.0
        self._idle_deadline = 0.0
        self.tunnel: Tunnel | None = None  # after a 101 (rule 5)
        # The Downstream of each exchange in turn; it holds the peer facts (scheme here,
        # the addresses in connection_made).
        self.down = Http1Response(self)
        self.down.scheme = scheme

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)
        successor = self.gw.successor
        if successor is not None:
            # Accepted before a reload swapped the gateway, connected after (a TLS
            # handshake was under way): served by the new one, not closed by the old.
            gw = successor
            while gw.successor is not None:
                gw = gw.successor
            self.gw = gw
            self.parser = RequestParser(gw.head_limits)
        if len(self.gw.connections) >= self.gw.max_connections:
            self._closing = True  # over max_connections: refuse quickly, keep serving the rest
            self.gw.over_capacity()
            transport.abort()
            return
        if self.down.scheme == b"https":
            tls = transport.get_extra_info("ssl_object")
            if tls is not None and tls.selected_alpn_protocol() == "h2":
                self._hand_over(b"")
                return
        transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)
        down = self.down
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        if peer:
            down.remote_addr = str(peer[0]).encode("ascii")
            down.remote_port = b"%d" % peer[1] if len(peer) > 1 else b""
            down.trusted = self.gw.forwarding.trust.trusts(str(peer[0]))
        if local:
            host = str(local[0])
            host = f"[{host}]" if ":" in host else host
            down.local_authority = f"{host}:{local[1]}".encode("ascii")
        self.gw.connections.add(self)
        self._idle_deadline = self.gw.now + self.gw.timeouts.head_timeout

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        events = self.parser.feed(data)
        if self.parser.in_head and not self._head_deadline:
            self._head_deadline = self.gw.now + self.gw.timeouts.head_timeout
        if not events:
            if self.parser.finished and self.parser.held > HIGH_WATER:
                self.pause_reading(_UPGRADE)  # until the upgrade is answered
            return
        if (
            len(events) == 2
            and events[1] is END
            and self.exchange is None
            and not self._pending
            and not self._dispatching
            and type(events[0]) is Request
        ):
            # The common case, one whole request without a body: no queue needed.
            self._start(events[0])
            reading = self._reading
            self._reading = None
            self.down.body_done = True
            if reading is not None:
                reading.on_request_end()
            return
        if (self._requests == 0 and type(events[0]) is Rejected and data.startswith(PREFACE)
                and self.gw.http2.enabled):
            self._hand_over(data)  # h2c with prior knowledge: llhttp refused the preface
            return
        self._pending.extend(events)
        if not self._dispatching:
            self._dispatch()

    def eof_received(self) -> bool:
        """Keep a half-closed connection only to answer a request already read whole, or
        to say 400 to one whose body can never end (a chunked body without its last
        CRLF): its upstream connection is dropped, never reused."""
        reading = self._reading
        if reading is not None and not self._closing:
            self._reading = None
            self.down.keep = False
            reading.on_request_broken(Rejected(400, "the request body was cut short"))
            return True  # answered (or cut, if the response had begun), then closed
        if self.parser.in_head:
            return False  # a head that can never be finished: drop both sides
        return self.exchange is not None or bool(self._pending)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.gw.connections.discard(self)
        exchange = self.exchange
        self.exchange = None
        if exchange is not None:
            exchange.abort()
        if self._reading is not None and self._reading is not exchange:
            self._reading.abort()
        self._reading = None
        if self.local_body is not None:
            self.local_body.close()
            self.local_body = None
        self._pending.clear()
        self.parser.close()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._write_paused_at = self.gw.now
        if self.exchange is not None:
            self.exchange.on_client_writable(False)

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.exchange is not None:
            self.exchange.on_client_writable(True)
        elif self.local_body is not None:
            self._pump()

    def _hand_over(self, data: bytes) -> None:
        """HTTP/2 (ALPN ``h2``, or the h2c preface in ``data``): server/h2.py takes the
        transport from here on."""
        from portico.server.h2 import H2Connection

        transport = self.transport
        assert transport is not None
        self._closing = True
        self.gw.connections.discard(self)
        self.parser.close()
        conn = H2Connection(self.gw, self.down.scheme)
        transport.set_protocol(conn)
        conn.connection_made(transport)
        if data:
            conn.data_received(data)

    # -- events ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        pending = self._pending
        self._dispatching = True
        try:
            while pending and not self._closing:
                event = pending[0]
                kind = type(event)
                if kind is Request:
                    if self.exchange is not None or self.local_body is not None:
                        self.pause_reading(_PIPELINE)
                        return
                    pending.popleft()
                    self._start(event)  # type: ignore[arg-type]
                elif kind is Data:
                    pending.popleft()
                    if self._reading is not None:
                        self._reading.on_request_data(event.data)  # type: ignore[union-attr]
                elif event is END:
                    pending.popleft()
                    reading = self._reading
                    self._reading = None
                    self.down.body_done = True
                    if reading is not None:
                        reading.on_request_end()
                else:
                    assert isinstance(event, Rejected)
                    if self._reading is not None:
                        pending.popleft()
                        reading = self._reading
                        self._reading = None
                        self.down.keep = False
                        reading.on_request_broken(event)
                    elif self.exchange is not None or self.local_body is not None:
                        return  # answer the earlier requests first
                    else:
                        pending.popleft()
                        self._reject(event)
        finally:
            self._dispatching = False
        self.resume_reading(_PIPELINE)

    def _start(self, request: Request) -> None:
        self._head_deadline = 0.0
        self._requests += 1
        down = self.down
        down.request = request
        # The last one allowed says Connection: close.
        down.keep = request.keep_alive and self._requests < self.gw.timeouts.max_keepalive_requests
        down.body_done = request.body is Body.NONE
        down.chunked = False
        exchange = open_exchange(down, request, self.gw)
        if exchange is not None:
            self.exchange = exchange
            self._reading = exchange
            exchange.start()

    def _reject(self, rejected: Rejected) -> None:
        """The stream is malformed with no request in flight: answer and close."""
        self._refuse(rejected.status, rejected.reason)

    def _refuse(self, status: int, reason: str) -> None:
        """Answer a request that never became an exchange (400, 408), log it, close."""
        request_id = self.gw.request_id()
        head, body = error_page(status, Layer.CLIENT, reason, request_id)
        self.write(head + body)
        self.gw.log_answer((self.down.remote_addr, b"-", b"-", b"1.1", status, len(body),
                            b"", b"", request_id, b"", b""), -1, 0.0)
        self.close()

    def exchange_finished(self, keep: bool) -> None:
        """The exchange (or an answer before one) is over; ``keep``: serve another."""
        self.exchange = None
        if (
            not keep
            or self.gw.draining
            or self._requests >= self.gw.timeouts.max_keepalive_requests
            or (self.parser.finished and not self._pending)
        ):
            self.close()
            return
        self._idle_deadline = self.gw.now + self.gw.timeouts.keepalive_timeout
        paused = self._paused_for
        if paused and (len(paused) > 1 or _PIPELINE not in paused):
            paused.intersection_update((_PIPELINE,))  # reasons left by the finished exchange
            if not paused and self.transport is not None:
                self.transport.resume_reading()
        if self.parser.in_head:
            self._head_deadline = self.gw.now + self.gw.timeouts.head_timeout
        if not self._dispatching and self._pending:
            self._dispatch()
        else:
            self.resume_reading(_PIPELINE)

    # -- output and flow control ------------------------------------------------------
    def pump_body(self, body: LocalBody) -> None:
        self.local_body = body
        self._pump()

    def _pump(self) -> None:
        """A burst of the local body's parts, until the client's socket is full (then
        resume_writing pumps again), or the next loop turn (other clients go first)."""
        for _ in range(16):
            body = self.local_body
            if body is None or self._write_paused or self._closing:
                return
            if body.pump():
                self.local_body = None
                body.done()
                return
        self.gw.loop.call_soon(self._pump)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closing:
            self.transport.write(data)

    def writelines(self, parts: list[bytes]) -> None:
        if self.transport is not None and not self._closing and parts:
            self.transport.writelines(parts)

    @property
    def reading_paused(self) -> bool:
        """Portico itself is holding the client back (a full upstream, a connect, a pipeline)."""
        return bool(self._paused_for)

    def pause_reading(self, reason: object) -> None:
        if not self._paused_for and self.transport is not None and not self._closing:
            self.transport.pause_reading()
        self._paused_for.add(reason)

    def resume_reading(self, reason: object) -> None:
        if reason in self._paused_for:
            self._paused_for.discard(reason)
            if not self._paused_for and self.transport is not None and not self._closing:
                self.transport.resume_reading()

    def close(self) -> None:
        """Flush what is written, then close."""
        if not self._closing and self.transport is not None:
            self._closing = True
            self.transport.close()

    def abort(self) -> None:
        if self.tunnel is not None:
            self.tunnel.abort()
            return
        if self.transport is not None:
            self._closing = True
            self.transport.abort()

    def close_if_idle(self, grace: float = 0.0) -> None:
        """At a drain: close a keep-alive connection between requests (now, or when it is
        still idle after ``grace`` seconds). One that has not sent its first request yet,
        or is sending a head, may finish it (then it closes), as nginx does: closing it
        would lose a request the client already sent."""
        if self.tunnel is not None:
            self.tunnel.drain(self.gw.timeouts.tunnel_drain_delay)
            return
        if (self.exchange is None and self.local_body is None and not self._pending
                and self._requests
                and not self.parser.in_head):
            if grace > 0:
                self._idle_deadline = min(self._idle_deadline, self.gw.now + grace)
            else:
                self.close()

    def switch_to(self, tunnel: Tunnel) -> bytes:
        """Rule 5: from now on ``tunnel`` has the transport; returns the bytes held
        after the request head, which it forwards first."""
        self._closing = True  # nothing here writes or reads any more
        self.exchange = None
        self._reading = None
        self._pending.clear()
        self.tunnel = tunnel
        tunnel.on_closed = self._tunnel_closed
        return self.parser.take_held()

    def _tunnel_closed(self) -> None:
        self.tunnel = None
        self.gw.connections.discard(self)
        self.parser.close()

    # -- deadlines ---------------------------------------------------------------------
    def check(self, now: float) -> None:
        if self._closing:
            if self.tunnel is not None:
                self.tunnel.check(now)
            return
        if self._write_paused and now - self._write_paused_at > self.gw.timeouts.send_timeout:
            self.abort()  # the client stopped reading (catalogue 55)
            return
        exchange = self.exchange
        if exchange is not None:
            exchange.check(now)
        elif self._head_deadline and now > self._head_deadline:
            self._refuse(408, "the request head did not arrive in time")
        elif not self._head_deadline and now > self._idle_deadline and self.local_body is None:
            self.close()  # idle keep-alive: silently (catalogue 56)


class Http1Response(Downstream):
    """The HTTP/1.1 wire form of the response an exchange on ``conn`` sends; one per
    connection, reset for each request (one exchange at a time: rule 1)."""

    def __init__(self, conn: ClientConnection) -> None:
        super().__init__()
        self.conn = conn
        self.request = _NO_REQUEST  # the request being answered
        self.keep = False  # the connection stays open after this response
        self.body_done = True  # all of the request body has been read
        self.chunked = False  # the body is re-chunked for the client
        self.out: list[bytes] = []  # written at flush or end

    @property
    def reading_paused(self) -> bool:
        return self.conn.reading_paused

    def pause_reading(self, reason: object) -> None:
        self.conn.pause_reading(reason)

    def resume_reading(self, reason: object) -> None:
        self.conn.resume_reading(reason)

    def accept_body(self) -> None:
        if self.request.expect_continue and not self.body_done:
            self.conn.write(writer.CONTINUE)

    def start_response(self, response: Response, headers: Headers) -> None:
        request = self.request
        framing = frame_response(request, response)
        headers += framing.fields
        self.chunked = framing.chunked
        if framing.close_delimited or not self.body_done or self.conn.gw.draining:
            self.keep = False
        headers += connection_field(self.keep, request.version)
        self.out.append(writer.head(writer.status_line(response.status, response.reason),
                                     headers))

    def send_informational(self, response: Response) -> None:
        """1xx but 100 (ours to send or not) are relayed to a 1.1 client; 1.0 has none."""
        if response.status != 100 and self.request.version == b"1.1":
            self.out.append(writer.head(writer.status_line(response.status, response.reason),
                                         response.headers))

    def send_data(self, data: bytes) -> None:
        if self.chunked:
            self.out += writer.chunk(data)
        else:
            self.out.append(data)

    def flush(self) -> None:
        out = self.out
        if out:
            self.conn.writelines(out)
            out.clear()

    def end(self) -> None:
        if self.chunked:
            self.out.append(writer.LAST_CHUNK)
        self.flush()

    def _keep_after_answer(self, status: int) -> bool:
        keep = (self.keep and self.body_done and not self.conn.gw.draining
                and status not in CLOSE_AFTER)
        self.keep = keep
        return keep

    def send_error(self, error: ProxyError, request_id: bytes) -> int:
        keep = self._keep_after_answer(error.status)
        data, sent = error_reply(error, request_id, self.request, keep)
        self.conn.write(data)
        return sent

    def send_answer(self, status: int, headers: Headers) -> None:
        headers.append((b"Content-Length", b"0"))
        if not self._keep_after_answer(status):
            headers.append((b"Connection", b"close"))
        self.conn.write(writer.head(writer.status_line(status, b""), headers))

    def send_body_from(self, body: LocalBody) -> None:
        self.conn.pump_body(body)

    def finished(self, clean: bool) -> None:
        self.conn.exchange_finished(clean and self.keep)

    def switch_protocols(
        self, response: Response, headers: Headers, tunnel: Tunnel
    ) -> tuple[asyncio.BaseTransport, bytes] | None:
        conn = self.conn
        transport = conn.transport
        if transport is None or conn._closing:
            return None
        transport.write(writer.head(writer.status_line(101, response.reason), headers))
        return transport, conn.switch_to(tunnel)
