"""One routed request's trip through the proxy: forward, stream back.

Callback-driven, no task per request: the client side (a ``Downstream``) calls
``on_request_*`` as the request arrives and the upstream connection calls
``on_upstream_*`` as the response does. An exchange exists only once the
request is routed (``proxy/dispatch.py`` routes it and makes the answers that
come before). Its two sides each have one small state::

    request:  BODY ─ DONE                  (DONE at once for a bodiless request)
    upstream: WAITING_APP ─ CONNECTING ─ SENDING ─ RECEIVING ─ DONE
              (pooled: straight to SENDING; a retry goes back to CONNECTING or
              WAITING_APP)

    start ─ acquire (pool or connect; a supervised app's restart is waited for)
      └─ attach: write head + buffered body, accept the body (100-continue)
           ├─ request body  → framed afresh → upstream  (paused when it is full)
           └─ response head → rewritten → downstream; body streamed (paused likewise)
    complete: return the upstream connection only if it ended cleanly
    upstream failed before any response byte: sent again if the error is
      ``retryable`` (its ``source`` says how: reconnect, or wait for the app)
    fail: on_error, then one error answer (before any response byte), else cut
    log: the route's sinks (the access log)

The route's phases (``proxy/phases.py``) run here but request_filter (in
dispatch): select_backend then upstream_request_filter at start,
response_filter on the response head, on_error in ``fail``, log at the end.

Errors become a status in one place (``fail``): the client's 4xx, portico's
413/408, the upstream's 502 (refused, broken) and 504 (timeouts). How any of it
looks on the wire is the downstream's business.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Final

from portico.errors import APP_DIED, APP_REFUSED, NEXT_BACKEND, Layer, ProxyError
from portico.http import writer
from portico.http.events import END, Body, Data, Event, Rejected, Request, Response
from portico.policy.context import RequestFacts
from portico.proxy.accesslog import Fields, Outcome
from portico.proxy.downstream import Downstream
from portico.proxy.framing import (
    balanced_response,
    connect_refused,
    connect_timed_out,
    frame_request,
    upstream_broke,
)
from portico.proxy.route_policy import RoutePolicy
from portico.proxy.tunnel import allowed_upgrade, open_tunnel, upgrade_fields
from portico.routing.table import Route, RouteMatch
from portico.upstream.backend import Backend
from portico.upstream.connection import UpstreamConnection
from portico.upstream.pool import connect_failure

if TYPE_CHECKING:
    from portico.proxy.gateway import Gateway

BUFFER_BEFORE_CONNECT: Final = 64 * 1024

# The request side (ints, not an enum: mypyc compares them natively).
REQUEST_BODY: Final = 1  # the body is still arriving
REQUEST_DONE: Final = 2  # all of the request has been read
# The upstream side.
WAITING_APP: Final = 1  # a supervised app is (re)starting
CONNECTING: Final = 2
SENDING: Final = 3  # attached, no response head yet
RECEIVING: Final = 4  # the response head went to the client
DONE: Final = 5  # answered, failed or aborted: every later callback is ignored


class Exchange:
    __slots__ = (
        "_app_waits", "_buffered", "_chunked_up", "_connecting", "_head", "_retried", "_tried",
        "backend", "body_deadline", "body_received", "client", "conn", "facts", "gw", "match",
        "policy", "request", "request_state", "route", "sent", "started", "state", "status",
        "upgrade", "upstream_deadline",
    )

    def __init__(
        self,
        client: Downstream,
        request: Request,
        gw: Gateway,
        match: RouteMatch,
        policy: RoutePolicy,
        facts: RequestFacts,
        started: float,
    ) -> None:
        self.client = client
        self.request = request
        self.gw = gw
        self.started = started
        self.match = match
        self.route: Route = match.route
        self.policy = policy
        self.facts = facts
        self.backend: Backend = match.route.backend  # until select_backend chooses
        self.conn: UpstreamConnection | None = None
        self._connecting: asyncio.Task[UpstreamConnection] | None = None
        self._head = b""
        self._buffered: list[bytes] = []
        self._chunked_up = request.body is Body.CHUNKED
        self._retried = 0  # sent again after the upstream broke
        self._tried: list[Backend] | None = None  # a balanced route's failed backends
        self._app_waits = 0  # waits for a supervised app to come up
        self.request_state = REQUEST_DONE if request.body is Body.NONE else REQUEST_BODY
        self.state = CONNECTING
        self.body_received = 0
        self.status = 0
        self.sent = 0
        self.upstream_deadline = 0.0
        self.body_deadline = 0.0
        self.upgrade = b""  # the upgrade asked of the upstream (proxy/tunnel.py)

    # -- phase: start ------------------------------------------------------------
    def start(self) -> None:
        policy = self.policy
        backend = policy.select_backend.select(self.request, self.facts)
        if backend is None:
            self.fail(policy.select_backend.unavailable())
            return
        self.backend = backend
        if self.request.upgrade:
            self.upgrade = allowed_upgrade(self.request, policy.limits)
        self._head = self._upstream_head()
        if self.request_state == REQUEST_BODY:
            self.body_deadline = self.gw.now + policy.limits.body_timeout
        gate = backend.gate
        if gate is not None and not gate.up:
            self._wait_for_app()
            return
        self._acquire()

    def _acquire(self) -> None:
        conn = self.gw.pool.acquire(self.backend)
        if conn is not None:
            self._attach(conn)
        else:
            self._connect()

    def _upstream_head(self) -> bytes:
        """Phase upstream_request_filter (ForwardedFields first makes a new list), then
        the framing this hop gets."""
        request = self.request
        facts = self.facts
        trusted = self.client.trusted
        backend = self.backend
        headers = request.headers
        for step in self.policy.upstream_request_filter:
            headers = step.apply(headers, request, facts, trusted, backend)
        headers += frame_request(request)
        if self.upgrade:
            headers += upgrade_fields(request)
        return writer.head(writer.request_line(request.method, self.match.target), headers)

    # -- phase: wait for a supervised app that is (re)starting -------------------------
    def _wait_for_app(self) -> None:
        gate = self.backend.gate
        assert gate is not None
        self._app_waits += 1
        self.state = WAITING_APP
        gate.wait(self._on_app_ready)

    def _on_app_ready(self, up: bool) -> None:
        if self.state == DONE:
            return
        if up:
            self._acquire()
            return
        gate = self.backend.gate
        assert gate is not None
        self.fail(ProxyError(503, Layer.UPSTREAM, gate.unavailable_reason()))

    # -- phase: acquire ----------------------------------------------------------
    def _connect(self) -> None:
        self.state = CONNECTING
        task = self.gw.loop.create_task(
            self.gw.pool.connect(self.backend, self.policy.limits.connect_timeout)
        )
        self._connecting = task
        task.add_done_callback(self._on_connected)

    def _on_connected(self, task: asyncio.Task[UpstreamConnection]) -> None:
        self._connecting = None
        if task.cancelled():
            return
        exc = task.exception()
        if self.state == DONE:
            if exc is None:
                self.gw.pool.release(task.result(), self.gw.now)
            return
        balanced = self.policy.passive is not None
        if isinstance(exc, TimeoutError):
            self._failed(connect_timed_out(balanced))
        elif exc is not None:
            supervised = self.backend.gate is not None
            self._failed(connect_refused(connect_failure(exc), supervised, self._app_waits,
                                         balanced))
        else:
            self._attach(task.result())

    def _attach(self, conn: UpstreamConnection) -> None:
        assert conn.transport is not None
        self.conn = conn
        self.state = SENDING
        conn.lend(self, self.request.method, self.upgrade)
        if self._buffered:
            conn.transport.writelines([self._head, *self._buffered])
            self._buffered = []
        else:
            conn.transport.write(self._head)
        self.upstream_deadline = self.gw.now + self.policy.limits.response_timeout
        client = self.client
        if self.request_state == REQUEST_BODY:
            client.accept_body()  # at most once: a request with a body is never retried
        client.resume_reading(self)
        if conn.write_paused:
            client.pause_reading(conn)

    # -- request body, from the client ---------------------------------------------
    def on_request_data(self, data: bytes) -> None:
        if self.state == DONE:
            return
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
        self.request_state = REQUEST_DONE
        if self.state == DONE:
            return
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
        self.upstream_deadline = self.gw.now + self.policy.limits.response_timeout

    def on_request_broken(self, rejected: Rejected) -> None:
        """The client's body turned out malformed after forwarding began."""
        self.fail(ProxyError(rejected.status, Layer.CLIENT, rejected.reason))

    # -- response, from the upstream -------------------------------------------------
    def on_upstream_events(self, events: list[Event]) -> None:
        if self.state != DONE:
            self._on_response(events, self.conn)

    def on_upstream_lost(self, events: list[Event]) -> None:
        lost = self.conn
        self.conn = None
        if self.state != DONE:
            self._on_response(events, lost)

    def _on_response(self, events: list[Event], conn: UpstreamConnection | None) -> None:
        """``conn`` sent ``events``: ``self.conn``, or the one just lost (now None there)."""
        client = self.client
        for event in events:
            if isinstance(event, Data):  # isinstance: native attribute access when compiled
                data = event.data
                self.sent += len(data)
                client.send_data(data)
            elif isinstance(event, Response):
                if event.status == 101:
                    self._switch(event, conn)
                    return
                if event.status < 200:
                    client.send_informational(event)
                else:
                    self._response_head(event)
            elif event is END:
                client.end()
                self._complete()
                return
            else:
                assert isinstance(event, Rejected)
                client.flush()
                self._upstream_broken(event, conn)
                return
        client.flush()
        self.upstream_deadline = self.gw.now + self.policy.limits.response_timeout

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

    def _response_head(self, response: Response) -> None:
        """Phase response_filter (ReverseFields first makes a new list)."""
        self.state = RECEIVING
        self.status = response.status
        facts = self.facts
        headers = response.headers
        policy = self.policy
        for step in policy.response_filter:
            headers = step.apply(headers, response, facts)
        if policy.passive is not None:  # a balanced route
            headers = balanced_response(policy, self, response.status, headers)
        self.client.start_response(response, headers)

    def _switch(self, response: Response, conn: UpstreamConnection | None) -> None:
        """A 101 for the upgrade asked (the parser accepts no other): phase
        response_filter, then a tunnel takes both connections over."""
        self.state = DONE
        self.status = 101
        self.conn = None
        headers = response.headers
        for step in self.policy.response_filter:
            headers = step.apply(headers, response, self.facts)
        assert conn is not None
        open_tunnel(self.gw, self.client, conn, response, headers, self.upgrade,
                    self.policy.limits)
        self._log()

    # -- endings ---------------------------------------------------------------------
    def _complete(self) -> None:
        conn = self.conn
        self.conn = None
        self.state = DONE
        done = self.request_state == REQUEST_DONE
        if conn is not None:
            if done and conn.keeps_alive:
                self.gw.pool.release(conn, self.gw.now)
            else:
                conn.abort()
        self._log()
        self.client.finished(done)

    def _upstream_broken(self, rejected: Rejected, conn: UpstreamConnection | None) -> None:
        received = conn.parser.received if conn is not None else 0
        pooled = conn is not None and conn.from_pool
        self._drop_upstream()
        if self.state == RECEIVING:
            # Mid-body: the client keeps exactly what came, then sees the close.
            self.state = DONE
            self._log()
            self.client.finished(False)
            return
        supervised = self.backend.gate is not None
        self._failed(upstream_broke(rejected.reason, self.request, received, self._retried,
                                    pooled, supervised, self.policy.passive is not None))

    def _failed(self, error: ProxyError) -> None:
        """An upstream failed before any response byte: send again if the error says so."""
        passive = self.policy.passive
        if passive is not None:
            passive.failed(self.backend, self.gw.now, str(error))
        if not error.retryable:
            self.fail(error)
            return
        if error.source == NEXT_BACKEND:
            self._next_backend(error)
            return
        if error.source == APP_REFUSED:
            self._wait_for_app()  # the app may have just crashed: wait for its restart
            return
        self._retried += 1
        gate = self.backend.gate
        if error.source == APP_DIED and gate is not None and not gate.up:
            self._wait_for_app()
        else:
            self._connect()  # a stale pooled connection, or an app that is up again

    def _next_backend(self, error: ProxyError) -> None:
        """A balanced route: the same request to another backend (the head again: its
        Host is that backend's), or ``error`` when there is none or the bounds are hit."""
        tried = self._tried = self._tried or []
        tried.append(self.backend)
        backend = self.policy.select_backend.retry(
            self.request, self.facts, tried, self.gw.now - self.started)
        if backend is None:
            if self.state == CONNECTING and self.backend.gate is not None and not self._app_waits:
                self._wait_for_app()  # an app instance refused: it may be restarting
            else:
                self.fail(error)
            return
        self._retried += 1
        self.backend = backend
        self._head = self._upstream_head()
        gate = backend.gate
        if gate is not None and not gate.up:
            self._wait_for_app()
        else:
            self._acquire()

    def _drop_upstream(self) -> None:
        conn = self.conn
        self.conn = None
        if conn is not None:
            conn.abort()
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None

    def fail(self, error: ProxyError) -> None:
        """Answer with an error if nothing was sent yet; otherwise cut the connection."""
        state = self.state
        if state == DONE:
            return
        self._drop_upstream()
        self.state = DONE
        if state == RECEIVING:
            self._log()
            self.client.finished(False)
            return
        for step in self.policy.on_error:
            error = step.restate(error, self.request, self.facts)
        self.status = error.status
        self.sent = self.client.send_error(error, self.facts.request_id)
        self._log()
        self.client.finished(True)

    def abort(self) -> None:
        """The client went away: drop the upstream side too, never pooled."""
        if self.state == DONE:
            return
        self.state = DONE
        self._drop_upstream()
        self.status = self.status or 499
        self._log()

    # -- deadlines, checked by the gateway's clock -------------------------------------
    def check(self, now: float) -> None:
        if self.state == DONE:
            return
        if self.request_state == REQUEST_BODY and self.body_deadline and now > self.body_deadline:
            if self.client.reading_paused:
                # Not the client's delay: portico stopped reading (the upstream is slow to
                # take the body, or not connected yet). The clock starts again on resume.
                self.body_deadline = now + self.policy.limits.body_timeout
            else:
                self.fail(ProxyError(408, Layer.CLIENT, "the request body stopped arriving"))
        elif self.conn is not None and self.upstream_deadline and now > self.upstream_deadline:
            if self.state == RECEIVING:
                self.fail(ProxyError(504, Layer.UPSTREAM, "upstream stalled mid-response"))
            else:
                self.fail(ProxyError(504, Layer.UPSTREAM, "upstream did not answer in time"))

    def _log(self) -> None:
        """Phase log."""
        sinks = self.policy.log
        if sinks:
            duration = self.gw.loop.time() - self.started
            for sink in sinks:
                sink.record_exchange(self, duration)

    def outcome(self) -> Outcome:
        """What metrics count (route, method, status, bytes each way), read at once."""
        return self.route.index, self.request.method, self.status, self.sent, \
            self.body_received

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
            self.facts.request_id,
            route.log_label,
            self.backend.authority,
        )
