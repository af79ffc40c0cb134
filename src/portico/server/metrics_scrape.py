"""``GET /metrics``: what the main process gathers for one scrape, rendered as text.

The request counters come summed from every serving process (metrics/totals.py),
with each worker's connections and requests in flight as of its last tick; the
rest is read now, without asking the workers anything: each route backend's
state, each app instance's state, restarts and process-tree CPU and memory, the
certificates' expiry, the reloads. So a scrape is synchronous (``render_now``),
and the admin API mounts it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from portico.metrics.procstat import group_usage
from portico.metrics.render import CONTENT_TYPE, AppRow, Scrape, UpstreamRow, render_metrics
from portico.server.health import backend_rows

if TYPE_CHECKING:
    from portico.admin.control import Actions
    from portico.server.listeners import Listeners
    from portico.server.reload import Runtime
    from portico.supervisor.supervisor import Supervisor


def gather(state: Runtime, workers: bool, supervisor: Supervisor) -> Scrape:
    """``workers``: the serving is done by worker processes (their gauges are in the
    totals), else by this one (counted now)."""
    gauges = list(state.totals.gauges.values()) if workers else [state.counts()]
    scrape = Scrape(state.totals, connections=sum(c for c, _ in gauges),
                    in_flight=sum(r for _, r in gauges), workers=len(gauges))
    gateway = state.serving
    for route, backends in zip(gateway.routes.routes, backend_rows(gateway), strict=True):
        label = route.log_label.decode("latin-1")
        # the main process's view: active checks and app gates; with workers = N,
        # the passive fail counts are each worker's own and not summed here
        for row in backends:
            scrape.upstreams.append(UpstreamRow(label, row["address"], row["state"] == "up",
                                                row["fails"]))
    for entry in supervisor.apps:
        process = entry.process
        usage = group_usage(process.pid) if process is not None and process.running and \
            process.pid is not None else None
        scrape.apps.append(AppRow(
            entry.group, entry.app.name, entry.gate.up, entry.restarts,
            usage[0] if usage else None, usage[1] if usage else None))
    if state.certs is not None:
        for loaded in state.certs.loaded:
            if loaded.facts is not None:
                name = loaded.facts.names[0] if loaded.facts.names else str(loaded.source.cert)
                scrape.certificates.append((name, loaded.facts.not_after.timestamp()))
    return scrape


def render_now(state: Runtime, listeners: Listeners, supervisor: Supervisor) -> bytes:
    """``GET /metrics``'s text, now (the admin API's ``metrics``)."""
    from portico.server.workers import WorkerPool

    return render_metrics(gather(state, isinstance(listeners, WorkerPool), supervisor))


def metrics_text(
    state: Runtime, listeners: Listeners, supervisor: Supervisor, enabled: Callable[[], bool]
) -> Callable[[], bytes | None]:
    """The admin API's ``GET /metrics``: the text now, or None while metrics are off."""
    return lambda: render_now(state, listeners, supervisor) if enabled() else None


def metrics_action(
    state: Runtime, listeners: Listeners, supervisor: Supervisor, enabled: Callable[[], bool]
) -> Actions:
    """The control socket's ``GET /metrics`` (404 saying how to turn it on, when off)."""

    async def action(method: str, path: str) -> tuple[int, str, bytes] | None:
        if path != "/metrics":
            return None
        if not enabled():
            return 404, "application/json", (b'{"error": "metrics are off: set [metrics] '
                                             b'enabled = true"}\n')
        if method != "GET":
            return 405, "application/json", b'{"error": "use GET /metrics"}\n'
        return 200, CONTENT_TYPE, render_now(state, listeners, supervisor)

    return action
