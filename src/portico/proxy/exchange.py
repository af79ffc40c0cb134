"""One request's trip through the proxy: route, forward, stream back.

Callback-driven, no task per request: the client connection calls
``on_request_*`` as the request arrives and the upstream connection calls
``on_upstream_*`` as the response does. Phases, in order::

    start ─ route ─ limits ─ upstream head ─ acquire (pool or connect)
      └─ attach: write head + buffered body, send 100-continue
           ├─ request body  → framed afresh → upstream  (paused when it is full)
           └─ response head → rewritten → client; body streamed (paused likewise)
    complete: return the upstream connection only if it ended cleanly
    fail: one error page (before any response byte), else close what was sent

Errors become a status in one place (``fail``): the client's 4xx, portico's
413/408, the upstream's 502 (refused, broken) and 504 (timeouts).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final, cast

from portico.errors import Layer, ProxyError
from portico.http import writer
from portico.http.events import END, Body, Data, Event, Rejected, Request, Response
from portico.policy.context import RequestFacts, client_request_id, public_port
from portico.policy.redirect import https_redirect
from portico.proxy.accesslog import Fields
from portico.proxy.errorpage import error_reply
from portico.proxy.framing import connection_field, frame_request, frame_response, may_retry
from portico.proxy.route_policy import RoutePolicy
from portico.routing.table import Route, RouteMatch
from portico.upstream.connection import UpstreamConnection
from portico.upstream.pool import connect_failure

if TYPE_CHECKING:
    from portico.proxy.gateway import Gateway
    from portico.server.protocol import ClientConnection

BUFFER_BEFORE_CONNECT: Final = 64 * 1024
HSTS: Final = b"strict-transport-security"


class Exchange:
    __slots__ = (
        "_buffered",
        "_chunked_down",
        "_chunked_up",
        "_connecting",
        "_continue_sent",
        "_head",
        "_retried",
        "_reused",
        "_rid",
        "_waited",
        "body_deadline",
        "body_received",
        "client",
        "conn",
        "facts",
        "finished",
        "gw",
        "keep_client",
        "policy",
        "request",
        "request_done",
        "response_started",
        "route",
        "sent",
        "started",
        "status",
        "upstream_deadline",
    )

    def __init__(self, client: ClientConnection, request: Request, gw: Gateway) -> None:
        self.client = client
        self.request = request
        self.gw = gw
        self.started = gw.loop.time()
        self.route: Route | None = None
        self.policy: RoutePolicy | None = None
        self.facts: RequestFacts | None = None
        self.conn: UpstreamConnection | None = None
        self._connecting: asyncio.Task[UpstreamConnection] | None = None
        self._head = b""
        self._buffered: list[bytes] = []
        self._chunked_up = request.body is Body.CHUNKED
        self._chunked_down = False
        self._continue_sent = False
        self._retried = 0
        self._reused = False
        self._waited = False
        self._rid = b"-"  # the request id of an error page sent before facts were known
        self.request_done = request.body is Body.NONE
        self.body_received = 0
        self.response_started = False
        self.finished = False
        self.keep_client = request.keep_alive
        self.status = 0
        self.sent = 0
        self.upstream_deadline = 0.0
        self.body_deadline = 0.0

    # -- phase: start ------------------------------------------------------------
    def start(self) -> None:
        request = self.request
        client = self.client
        if self.gw.redirect_to_https and client.scheme == b"http":
            self._redirect_to_https()
            return
        try:
            match = self.gw.routes.resolve(request.host, request.target)
        except ProxyError as exc:
            self.fail(exc)
            return
        route = self.route = match.route
        policy = self.policy = cast(RoutePolicy, route.policy)
        limits = policy.limits
        if request.body is Body.LENGTH and request.content_length > limits.max_body_size:
            self.fail(limits.body_too_large())
            return
        host = request.host or client.local_authority
        facts = self.facts = RequestFacts(
            client.scheme,
            host,
            public_port(host, client.scheme),
            client.remote_addr,
            route.prefix if match.stripped else b"",
            client_request_id(request) or self.gw.request_id(),
        )
        self._head = self._upstream_head(match, facts, policy)
        if not self.request_done:
            self.body_deadline = self.gw.now + limits.body_timeout
        gate = policy.app
        if gate is not None and not gate.up:
            self._wait_for_app()
            return
        self._acquire()

    def _acquire(self) -> None:
        assert self.route is not None
        conn = self.gw.pool.acquire(self.route.backend)
        if conn is not None:
            self._attach(conn, reused=True)
        else:
            self._connect()

    # -- phase: wait for a supervised app that is (re)starting -------------------------
    def _wait_for_app(self) -> None:
        assert self.policy is not None and self.policy.app is not None
        self._waited = True
        self.policy.app.wait(self._on_app_ready)

    def _on_app_ready(self, up: bool) -> None:
        if self.finished:
            return
        if up:
            self._acquire()
            return
        assert self.policy is not None and self.policy.app is not None
        self.fail(ProxyError(503, Layer.UPSTREAM, self.policy.app.unavailable_reason()))

    def _upstream_head(self, match: RouteMatch, facts: RequestFacts, policy: RoutePolicy) -> bytes:
        request = self.request
        route = match.route
        host = request.host if route.preserve_host and request.host else route.backend.authority
        headers = self.gw.forwarding.upstream_headers(
            request.headers, request.lnames, facts, self.client.trusted, host
        )
        headers = policy.request_ops.apply(headers, facts)
        headers += frame_request(request)
        return writer.head(writer.request_line(request.method, match.target), headers)

    # -- phase: acquire ----------------------------------------------------------
    def _connect(self) -> None:
        assert self.route is not None and self.policy is not None
        task = self.gw.loop.create_task(
            self.gw.pool.connect(self.route.backend, self.policy.limits.connect_timeout)
        )
        self._connecting = task
        task.add_done_callback(self._on_connected)

    def _on_connected(self, task: asyncio.Task[UpstreamConnection]) -> None:
        self._connecting = None
        if task.cancelled():
            return
        exc = task.exception()
        if self.finished:
            if exc is None:
                self.gw.pool.release(task.result(), self.gw.now)
            return
        if isinstance(exc, TimeoutError):
            self.fail(ProxyError(504, Layer.UPSTREAM, "timed out connecting to the upstream"))
        elif exc is not None:
            assert self.policy is not None
            if self.policy.app is not None and not self._waited:
                self._wait_for_app()  # the app may have just crashed: wait for its restart
                return
            self.fail(ProxyError(502, Layer.UPSTREAM, connect_failure(exc)))
        else:
            self._attach(task.result(), reused=False)

    def _attach(self, conn: UpstreamConnection, reused: bool) -> None:
        assert conn.transport is not None and self.policy is not None
        self.conn = conn
        self._reused = reused
        conn.lend(self, self.request.method)
        if self._buffered:
            conn.transport.writelines([self._head, *self._buffered])
            self._buffered = []
        else:
            conn.transport.write(self._head)
        self.upstream_deadline = self.gw.now + self.policy.limits.response_timeout
        if self.request.expect_continue and not self.request_done and not self._continue_sent:
            self._continue_sent = True
            self.client.write(writer.CONTINUE)
        self.client.resume_reading(self)
        if conn.write_paused:
            self.client.pause_reading(conn)

    # -- request body, from the client ---------------------------------------------
    def on_request_data(self, data: bytes) -> None:
        if self.finished:
            return
        assert self.policy is not None
        limits = self.policy.limits
        self.body_received += len(data)
        self.body_deadline = self.gw.now + limits.body_timeout
        if self.body_received > limits.max_body_size:
            self.fail(limits.body_too_large())
            return
        framed = writer.chunk(data) if self._chunked_up else (data,)
        conn = self.conn
        if conn is not None and conn.transport is not None:
            conn.transport.writelines(framed)
            if not conn.write_paused:
                self._upstream_progressed()
        else:
            self._buffered.extend(framed)
            if sum(map(len, self._buffered)) > BUFFER_BEFORE_CONNECT:
                self.client.pause_reading(self)

    def on_request_end(self) -> None:
        if self.finished:
            self.request_done = True
            return
        self.request_done = True
        if self.conn is not None:
            self._upstream_progressed()  # the wait for the response starts now
        if self._chunked_up:
            conn = self.conn
            if conn is not None and conn.transport is not None:
                conn.transport.write(writer.LAST_CHUNK)
            else:
                self._buffered.append(writer.LAST_CHUNK)

    def _upstream_progressed(self) -> None:
        """The upstream took request bytes: its deadline (response_timeout) starts again."""
        assert self.policy is not None
        self.upstream_deadline = self.gw.now + self.policy.limits.response_timeout

    def on_request_broken(self, rejected: Rejected) -> None:
        """The client's body turned out malformed after forwarding began."""
        if self.finished:
            return
        self.keep_client = False
        self.fail(ProxyError(rejected.status, Layer.CLIENT, rejected.reason))

    # -- response, from the upstream -------------------------------------------------
    def on_upstream_events(self, events: list[Event]) -> None:
        if self.finished:
            return
        out: list[bytes] = []
        chunked = self._chunked_down
        for event in events:
            if isinstance(event, Data):  # isinstance: native attribute access when compiled
                data = event.data
                self.sent += len(data)
                if chunked:
                    out += writer.chunk(data)
                else:
                    out.append(data)
            elif isinstance(event, Response):
                if event.status < 200:
                    if event.status != 100 and self.request.version == b"1.1":
                        out.append(writer.head(writer.status_line(event.status, event.reason),
                                               event.headers))
                    continue
                out.append(self._response_head(event))
                chunked = self._chunked_down
            elif event is END:
                if chunked:
                    out.append(writer.LAST_CHUNK)
                self.client.writelines(out)
                self._complete()
                return
            else:
                assert isinstance(event, Rejected)
                if out:
                    self.client.writelines(out)
                self._upstream_broken(event)
                return
        if out:
            self.client.writelines(out)
        assert self.policy is not None
        self.upstream_deadline = self.gw.now + self.policy.limits.response_timeout

    def on_upstream_lost(self, events: list[Event]) -> None:
        self.conn = None
        if not self.finished:
            self.on_upstream_events(events)

    def on_upstream_writable(self, writable: bool) -> None:
        if writable:
            self._upstream_progressed()
            self.client.resume_reading(self.conn)
        else:
            self.client.pause_reading(self.conn)

    def on_client_writable(self, writable: bool) -> None:
        conn = self.conn
        if conn is not None:
            if writable:
                conn.resume_reading()
            else:
                conn.pause_reading()

    def _response_head(self, response: Response) -> bytes:
        assert self.policy is not None and self.facts is not None
        request = self.request
        self.response_started = True
        self.status = response.status
        facts = self.facts
        public_origin = self.client.scheme + b"://" + facts.host
        headers = self.policy.downstream_headers(
            response.headers, response.lnames, facts, public_origin
        )
        framing = frame_response(request, response)
        headers += framing.fields
        self._chunked_down = framing.chunked
        if framing.close_delimited or not self.request_done or self.gw.draining:
            self.keep_client = False
        headers += connection_field(self.keep_client, request.version)
        if b"x-request-id" not in response.lnames:
            headers.append((b"X-Request-ID", facts.request_id))
        hsts = self.gw.hsts
        if hsts and facts.scheme == b"https" and HSTS not in response.lnames:
            headers.append((b"Strict-Transport-Security", hsts))
        return writer.head(writer.status_line(response.status, response.reason), headers)

    def _redirect_to_https(self) -> None:
        request = self.request
        keep = self.keep_client and self.request_done and not self.gw.draining
        host = request.host or self.client.local_authority
        rid = self._own_request_id()
        self.client.write(https_redirect(host, request.target, self.gw.https_port, rid, not keep))
        self.finished = True
        self.status = 308
        self.keep_client = keep
        self._log()
        self.client.exchange_finished(self, keep)

    # -- endings ---------------------------------------------------------------------
    def _complete(self) -> None:
        conn = self.conn
        self.conn = None
        self.finished = True
        if conn is not None:
            if self.request_done and conn.keeps_alive:
                self.gw.pool.release(conn, self.gw.now)
            else:
                conn.abort()
        self._log()
        self.client.exchange_finished(self, self.keep_client and self.request_done)

    def _upstream_broken(self, rejected: Rejected) -> None:
        conn = self.conn
        self.conn = None
        received = conn.parser.received if conn is not None else 0
        if conn is not None:
            conn.abort()
        if self.response_started:
            # Mid-body: the client keeps exactly what came, then sees the close.
            self.finished = True
            self.keep_client = False
            self._log()
            self.client.exchange_finished(self, False)
            return
        gate = self.policy.app if self.policy else None
        if may_retry(self.request, received, self._retried, supervised=gate is not None):
            self._retried += 1
            if self._reused:
                self._connect()  # a pooled connection the upstream had closed
                return
            if gate is not None:
                # A supervised app died under the request. Its orphaned workers may
                # still accept for a moment before they are swept, hence two tries.
                if gate.up:
                    self._connect()
                else:
                    self._wait_for_app()
                return
        self.fail(ProxyError(502, Layer.UPSTREAM, rejected.reason))

    def fail(self, error: ProxyError) -> None:
        """Answer with an error page if nothing was sent yet; otherwise cut the connection."""
        if self.finished:
            return
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.abort()
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self.finished = True
        if self.response_started:
            self.keep_client = False
            self._log()
            self.client.exchange_finished(self, False)
            return
        self.status = error.status
        keep = self.keep_client and self.request_done and not self.gw.draining
        if error.status in (400, 408, 413, 414, 431, 505):
            keep = False
        request_id = self.facts.request_id if self.facts is not None else self._own_request_id()
        data, self.sent = error_reply(error, request_id, self.request, keep)
        self.client.write(data)
        self.keep_client = keep
        self._log()
        self.client.exchange_finished(self, keep)

    def _own_request_id(self) -> bytes:
        """The id of an answer portico makes before routing (no route, a redirect to https):
        the client's own, else a new one; the access log shows it too."""
        self._rid = client_request_id(self.request) or self.gw.request_id()
        return self._rid

    def abort(self) -> None:
        """The client went away: drop the upstream side too, never pooled."""
        if self.finished:
            return
        self.finished = True
        self.keep_client = False
        if self.conn is not None:
            self.conn.abort()
            self.conn = None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        self.status = self.status or 499
        self._log()

    # -- deadlines, checked by the gateway's clock -------------------------------------
    def check(self, now: float) -> None:
        if self.finished:
            return
        if not self.request_done and self.body_deadline and now > self.body_deadline:
            if self.client.reading_paused:
                # Not the client's delay: portico stopped reading (the upstream is slow to
                # take the body, or not connected yet). The clock starts again on resume.
                assert self.policy is not None
                self.body_deadline = now + self.policy.limits.body_timeout
            else:
                self.fail(ProxyError(408, Layer.CLIENT, "the request body stopped arriving"))
        elif self.conn is not None and self.upstream_deadline and now > self.upstream_deadline:
            if self.response_started:
                self.fail(ProxyError(504, Layer.UPSTREAM, "upstream stalled mid-response"))
            else:
                self.fail(ProxyError(504, Layer.UPSTREAM, "upstream did not answer in time"))

    def _log(self) -> None:
        log = self.gw.access_log
        if log.enabled:
            log.record_exchange(self, self.gw.loop.time() - self.started)

    def log_fields(self) -> Fields:
        """What the access log shows; read when its batch is written, not per request."""
        request = self.request
        route = self.route
        return (
            self.client.remote_addr,
            request.method,
            request.target,
            request.version,
            self.status,
            self.sent,
            request.get(b"referer"),
            request.get(b"user-agent"),
            self.facts.request_id if self.facts else self._rid,
            route.log_label if route else b"",
            route.backend.authority if route else b"",
        )

