"""Passive health: the requests of a balanced route decide that a backend is down.

``max_fails`` failures (a failed connect, a broken answer, an ``unhealthy_status``,
a head slower than ``unhealthy_latency``) within ``fail_duration`` take the backend
out for ``fail_duration``; the state is on the ``Backend`` (the pool's, so it
outlives a reload that keeps the address). Active checks are upstream/probes.py.
"""

from __future__ import annotations

import math

from portico.errors import Layer, ProxyError
from portico.upstream.availability import BackendState
from portico.upstream.backend import Backend
from portico.upstream.balancer import Member


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
        if self.max_fails == 0 or self.fail_duration <= 0 or backend.drained:
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


def all_down(members: list[Member], now: float, interval: float) -> ProxyError:
    """The 503 for a route none of whose backends is available, with Retry-After: when
    the first comes back (passive), or the next active check."""
    waits = [m.backend.down_until - now for m in members
             if now < m.backend.down_until < math.inf]  # a drained one: not on its own
    if any(m.check is not None and not m.check.up for m in members) or not waits:
        waits.append(interval)
    reasons = "; ".join(f"{m.backend.label}: {why(m, now)}" for m in members)
    error = ProxyError(503, Layer.UPSTREAM, f"every backend of this route is down ({reasons})")
    error.retry_after = max(1, math.ceil(min(waits)))
    return error


def why(member: Member, now: float) -> str:
    """Why a route's backend is down, for a 503 and ``portico status``; "" when up."""
    check, backend = member.check, member.backend
    if backend.drained:
        return backend.reason
    if check is not None and not check.up:
        return check.reason or "its health check fails"
    if backend.down_until > now:
        return backend.reason or "too many failed requests"
    gate = backend.gate
    if gate is not None and not gate.up:
        return f"{gate.kind} {gate.name!r} is {gate.state}"
    return ""


def available(member: Member, now: float) -> bool:
    """Whether the route may send this backend a request now: its active check (if
    any) is up, passive health has not taken it out, its app's gate (if any) is up."""
    check = member.check
    if check is not None and not check.up:
        return False
    backend = member.backend
    if backend.down_until > now:
        return False
    gate = backend.gate
    return gate is None or gate.state is BackendState.UP
