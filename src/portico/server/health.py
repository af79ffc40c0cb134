"""Active health checks in a running portico: the main process probes, workers follow.

The main process runs one ``Prober`` (upstream/probes.py) over the checks of the
gateway in force, again after each reload (``Runtime.served``). Each verdict
lands in the main process's own pool (its status shows it) and, with workers,
goes to every worker as a ``BackendHealth`` message, which the worker applies to
the same (address, check) in its pool. A worker started later hears the next
verdict within one interval; until then it counts the backend as up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from portico.proxy.gateway import Gateway
from portico.proxy.phases import Balanced
from portico.proxy.route_policy import RoutePolicy, checked
from portico.server import channel
from portico.server.listeners import Listeners
from portico.server.reload import Runtime
from portico.server.workers import WorkerPool
from portico.upstream.balancer import Member
from portico.upstream.health import available, why
from portico.upstream.pool import UpstreamPool
from portico.upstream.probes import Prober, Verdict


def start_probes(loop: asyncio.AbstractEventLoop, state: Runtime, listeners: Listeners) -> Prober:
    """Probe the serving gateway's checks from now on, and each reload's."""

    def tell(verdict: Verdict) -> None:
        if isinstance(listeners, WorkerPool):
            listeners.broadcast(verdict_message(verdict))

    prober = Prober(loop, tell)

    def follow(gateway: Gateway) -> None:
        prober.follow(checked(gateway.policies))

    follow(state.serving)
    state.served.append(follow)
    return prober


def verdict_message(verdict: Verdict) -> channel.BackendHealth:
    (scheme, host, port, tls), check, up, reason, checked_at = verdict
    return channel.BackendHealth(scheme, host, port, tls, check, up, reason, checked_at)


def apply_verdict(pool: UpstreamPool, message: channel.BackendHealth) -> None:
    """A worker: the main process's verdict on one (address, check), if it serves it."""
    key = ((message.scheme, message.host, message.port, message.tls), message.check)
    state = pool.checks.get(key)
    if state is not None:
        state.up, state.reason, state.checked_at = message.up, message.reason, message.checked_at
        state.probes += 1


def backend_rows(gateway: Gateway) -> list[list[dict[str, Any]]]:
    """Per route, each backend as ``portico status`` shows it: up or down and why,
    requests in flight, recent failures, the last active check (wall time)."""
    now = gateway.now
    rows = []
    for route, policy in zip(gateway.routes.routes, gateway.policies.routes, strict=True):
        selector = policy.select_backend
        members = selector.members if isinstance(selector, Balanced) else [Member(route.backend)]
        rows.append([{
            "address": f"{m.backend.scheme}://{m.backend.label}",
            "weight": m.weight,
            "state": "up" if available(m, now) else "down",
            "why": why(m, now),
            "in_flight": m.backend.in_flight,
            "fails": m.backend.fails if now - m.backend.fails_since <= _window(policy) else 0,
            "last_check": (m.check.checked_at or None) if m.check is not None else None,
            "check": m.check.check.path if m.check is not None else None,
        } for m in members])
    return rows


def _window(policy: RoutePolicy) -> float:
    return policy.passive.fail_duration if policy.passive is not None else 0.0
