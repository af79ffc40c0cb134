"""The state one listening process shares across its connections."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING, Protocol

from portico import memory
from portico.http.limits import HeadLimits
from portico.policy.forwarded import Forwarding
from portico.proxy.accesslog import AccessLog, Answered, Fields, LogSink
from portico.proxy.route_policy import Policies
from portico.routing.table import RouteTable
from portico.settings import ClientTimeouts, Http2Settings, PoolSettings, default_max_connections
from portico.upstream.pool import UpstreamPool

if TYPE_CHECKING:
    from portico.proxy.exchange import Exchange
    from portico.proxy.tunnel import Tunnel


class ClientSide(Protocol):
    """What the gateway asks of each client connection, HTTP/1.1 (server/protocol.py) or
    HTTP/2 (server/h2.py)."""

    @property
    def exchange(self) -> Exchange | None: ...  # one in flight (HTTP/2: any of them)
    @property
    def tunnel(self) -> Tunnel | None: ...  # after a 101 (HTTP/1.1 upgrades only)
    def check(self, now: float) -> None: ...
    def close_if_idle(self, grace: float = 0.0) -> None: ...
    def abort(self) -> None: ...


class Gateway:
    """Routes, policy, pool and log, plus the coarse clock that drives every deadline.

    No per-request timers: each connection keeps one deadline and ``tick``
    (every ``tick_interval`` seconds) checks them all.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        routes: RouteTable,
        forwarding: Forwarding,
        head_limits: HeadLimits,
        timeouts: ClientTimeouts,
        pool: UpstreamPool,
        access_log: AccessLog,
        pool_settings: PoolSettings | None = None,
        tick_interval: float = 0.5,
        hsts: bytes | None = None,
        redirect_to_https: bool = False,
        http2: Http2Settings | None = None,
    ) -> None:
        self.loop = loop
        self.routes = routes
        self.policies = Policies()  # compiled per route: route_policy.compile_policies
        self.forwarding = forwarding
        self.head_limits = head_limits
        self.timeouts = timeouts
        self.max_connections = timeouts.max_connections or default_max_connections()
        self.pool = pool
        # the pool's limits once this gateway serves (a reload may change them)
        self.pool_settings = pool_settings or PoolSettings(pool.max_idle, pool.idle_timeout)
        self.access_log = access_log
        self.metrics: LogSink | None = None  # [metrics] on: counts every exchange
        self.tick_interval = tick_interval
        self.hsts = hsts  # Strict-Transport-Security for https responses
        self.redirect_to_https = redirect_to_https
        self.http2 = http2 or Http2Settings()
        self.https_port = 443  # the https listener's port, set once it is bound
        self.connections: set[ClientSide] = set()
        self.tunnels = 0  # of those connections, how many are upgrade tunnels (proxy/tunnel.py)
        self.draining = False
        self.successor: Gateway | None = None  # set when a reload replaced this gateway
        self.now = loop.time()
        self._rid_base = os.urandom(6).hex().encode("ascii")
        self._rid_count = 0
        self._ticker: asyncio.TimerHandle | None = None
        self.refused = 0
        self._released = self.now
        self._refused_said = -3600.0

    def over_capacity(self) -> None:
        """A connection was refused at max_connections; said at most once a minute."""
        self.refused += 1
        if self.now - self._refused_said > 60:
            self._refused_said = self.now
            print(f"portico: max_connections ({self.max_connections}) reached; "
                  f"refusing new connections ({self.refused} so far)", file=sys.stderr, flush=True)

    def log_answer(self, fields: Fields, route_index: int, duration: float) -> None:
        """The log phase of a request answered before it became an exchange (a redirect,
        a 404, a 413 in dispatch; a 400 or 408 of the connection's own): every sink of
        the gateway's (the access log, metrics) gets its completion record."""
        sinks = self.policies.log
        if sinks:
            record = Answered(fields, route_index)
            for sink in sinks:
                sink.record_exchange(record, duration)

    def request_id(self) -> bytes:
        self._rid_count += 1
        return b"%s%08x" % (self._rid_base, self._rid_count)

    def start_clock(self) -> None:
        """Deadlines are ``now`` plus a timeout, and ``now`` moves only with the clock:
        it starts at the time of the start, not of the gateway's build (apps may have
        taken seconds to come up in between: a first request's deadline would be early)."""
        self.now = self.loop.time()
        self._ticker = self.loop.call_later(self.tick_interval, self._tick)

    def stop_clock(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _tick(self) -> None:
        now = self.loop.time()
        self.check_deadlines(now)
        self.access_log.flush()
        if self.metrics is not None:
            self.metrics.flush()  # its deltas to the main process: once a tick
        if now - self._released > memory.RELEASE_INTERVAL:
            self._released = now
            memory.release()
        self._ticker = self.loop.call_later(self.tick_interval, self._tick)

    def check_deadlines(self, now: float) -> None:
        """Move the clock to ``now`` and act on every deadline it passed (the tick's work;
        the in-process test harness calls it with a clock it sets itself)."""
        self.now = now
        for conn in list(self.connections):
            conn.check(now)
        self.pool.expire(now)

    def drain(self, idle_grace: float = 0.0) -> None:
        """Stop keeping connections alive; close the idle ones now, or if still idle after
        ``idle_grace`` seconds (a reload: a client about to send its next request on a
        kept-alive connection gets one more answer, with ``Connection: close``, instead of
        a connection closed under the request it just sent)."""
        self.draining = True
        for conn in list(self.connections):
            conn.close_if_idle(idle_grace)

    def serve_backends(self) -> None:
        """This gateway now serves (a reload put it in place): the pool keeps its
        backends, with its limits, and closes those no route of it names."""
        settings = self.pool_settings
        self.pool.retain([b for route in self.routes.routes for b in route.backends],
                         settings.max_idle, settings.idle_timeout)

    def abort_all(self) -> None:
        """Close every connection; the pool's idle ones too, unless a reload's gateway
        took the pool over."""
        for conn in list(self.connections):
            conn.abort()
        if self.successor is None:
            self.pool.close_all()
