"""Passive health: the requests of a balanced route decide that a backend is down.

``max_fails`` failures (a failed connect, a broken answer, an ``unhealthy_status``,
a head slower than ``unhealthy_latency``) within ``fail_duration`` take the backend
out for ``fail_duration``; the state is on the ``Backend`` (the pool's, so it
outlives a reload that keeps the address). Active checks are upstream/probes.py.
"""

from __future__ import annotations

import math

from portico.errors import Layer, ProxyError
from portico.upstream.backend import Backend


class PassiveHealth:
    __slots__ = ("fail_duration", "latency", "max_fails", "statuses")

    def __init__(
        self, max_fails: int, fail_duration: float, statuses: tuple[int, ...] = (),
        latency: float | None = None,
    ) -> None:
        self.max_fails = max_fails
        self.fail_duration = fail_duration
        self.statuses = frozenset(statuses)
        self.latency = latency if latency is not None else math.inf

    def failed(self, backend: Backend, now: float, reason: str) -> None:
        """One failure of ``backend``; the ``max_fails``-th in the window takes it out."""
        if self.max_fails == 0 or self.fail_duration <= 0:
            return
        if now - backend.fails_since > self.fail_duration:
            backend.fails, backend.fails_since = 0, now
        backend.fails += 1
        if backend.fails >= self.max_fails:
            backend.down_until = now + self.fail_duration
            backend.reason = f"{backend.fails} failures in {self.fail_duration:g}s: {reason}"

    def answered(self, backend: Backend, status: int, latency: float, now: float) -> None:
        """A response head came: an unhealthy status or a slow one counts as a failure."""
        if status in self.statuses:
            self.failed(backend, now, f"answered {status}")
        elif latency > self.latency:
            self.failed(backend, now, f"answered after {latency:.3g}s")


def all_down(backends: tuple[Backend, ...], now: float, interval: float) -> ProxyError:
    """The 503 for a route none of whose backends is available, with Retry-After: when
    the first comes back (passive), or the next active check."""
    waits = [b.down_until - now for b in backends if b.down_until > now]
    if not all(b.healthy for b in backends) or not waits:
        waits.append(interval)
    reasons = "; ".join(f"{b.label}: {why(b, now)}" for b in backends)
    error = ProxyError(503, Layer.UPSTREAM, f"every backend of this route is down ({reasons})")
    error.retry_after = max(1, math.ceil(min(waits)))
    return error


def why(backend: Backend, now: float) -> str:
    """Why ``backend`` is down, for a 503 and ``portico status``; "" when it is up."""
    if not backend.healthy:
        return backend.reason or "its health check fails"
    if backend.down_until > now:
        return backend.reason or "too many failed requests"
    gate = backend.gate
    if gate is not None and not gate.up:
        return f"{gate.kind} {gate.name!r} is {gate.state}"
    return ""
