"""Prometheus text for ``GET /metrics``: a single-process prometheus_client registry
with one custom collector over a ``Scrape`` (what the main process gathered).

The names follow docs/guide/metrics.md (after the anchors' own, in
admin-ui-notes.md (a2)); label values are bounded: route names, status classes,
a fixed list of methods, app and instance names, certificate names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portico.metrics.counters import (
    BUCKETS,
    BUCKETS_AT,
    CLASSES,
    DURATION_US_AT,
    METHODS,
    RECEIVED_AT,
    SENT_AT,
)
from portico.metrics.totals import Totals

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class AppRow:
    app: str
    instance: str
    up: bool
    restarts: int
    cpu_seconds: float | None = None
    resident_bytes: int | None = None


@dataclass
class UpstreamRow:
    route: str
    upstream: str
    up: bool
    fails: int = 0


@dataclass
class Scrape:
    """Everything one ``/metrics`` answer shows, gathered by the main process."""

    totals: Totals
    connections: int = 0
    in_flight: int = 0
    workers: int = 1
    apps: list[AppRow] = field(default_factory=list)
    upstreams: list[UpstreamRow] = field(default_factory=list)
    certificates: list[tuple[str, float]] = field(default_factory=list)  # name, not-after


class _Collector:
    def __init__(self, scrape: Scrape) -> None:
        self.scrape = scrape

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        scrape, rows = self.scrape, sorted(self.scrape.totals.rows.items())
        requests = CounterMetricFamily(
            "portico_requests", "Requests answered, by route, status class and method.",
            labels=["route", "code", "method"])
        duration = HistogramMetricFamily(
            "portico_request_duration_seconds",
            "Time from the request head to the end of the answer, by route.", labels=["route"])
        sent = CounterMetricFamily("portico_response_bytes",
                                   "Response body bytes sent to clients.", labels=["route"])
        received = CounterMetricFamily("portico_request_bytes",
                                       "Request body bytes read from clients.", labels=["route"])
        for route, row in rows:
            for m, method in enumerate(METHODS):
                for c, code in enumerate(CLASSES):
                    count = row[m * len(CLASSES) + c]
                    if count:
                        requests.add_metric([route, code, method], count)
            cumulative, buckets = 0, []
            for b, edge in enumerate(BUCKETS):
                cumulative += row[BUCKETS_AT + b]
                buckets.append((repr(edge), float(cumulative)))
            cumulative += row[BUCKETS_AT + len(BUCKETS)]
            buckets.append(("+Inf", float(cumulative)))
            duration.add_metric([route], buckets, row[DURATION_US_AT] / 1_000_000)
            sent.add_metric([route], row[SENT_AT])
            received.add_metric([route], row[RECEIVED_AT])
        yield from (requests, duration, sent, received)
        yield GaugeMetricFamily("portico_requests_in_flight",
                                "Requests being answered now, over every worker.",
                                value=scrape.in_flight)
        yield GaugeMetricFamily("portico_open_connections",
                                "Client connections open now, over every worker.",
                                value=scrape.connections)
        yield GaugeMetricFamily("portico_workers", "Serving processes.", value=scrape.workers)
        yield from self._upstreams()
        yield from self._apps()
        yield from self._config_and_tls()

    def _upstreams(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("portico_upstream_up", "1 if the backend takes requests.",
                               labels=["route", "upstream"])
        fails = GaugeMetricFamily("portico_upstream_fails",
                                  "Failed requests counted against the backend now.",
                                  labels=["route", "upstream"])
        for row in self.scrape.upstreams:
            up.add_metric([row.route, row.upstream], 1 if row.up else 0)
            fails.add_metric([row.route, row.upstream], row.fails)
        yield from (up, fails)

    def _apps(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        labels = ["app", "instance"]
        up = GaugeMetricFamily("portico_app_up", "1 if the app instance is up.", labels=labels)
        restarts = CounterMetricFamily("portico_app_restarts",
                                       "Restarts of the app instance.", labels=labels)
        cpu = CounterMetricFamily("portico_app_cpu_seconds",
                                  "CPU time (user and system) of the instance's process tree.",
                                  labels=labels)
        rss = GaugeMetricFamily("portico_app_resident_memory_bytes",
                                "Resident memory of the instance's process tree.", labels=labels)
        for row in self.scrape.apps:
            names = [row.app, row.instance]
            up.add_metric(names, 1 if row.up else 0)
            restarts.add_metric(names, row.restarts)
            if row.cpu_seconds is not None:
                cpu.add_metric(names, row.cpu_seconds)
            if row.resident_bytes is not None:
                rss.add_metric(names, row.resident_bytes)
        yield from (up, restarts, cpu, rss)

    def _config_and_tls(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        totals = self.scrape.totals
        reloads = CounterMetricFamily("portico_config_reloads", "Reloads, by result.",
                                      labels=["result"])
        for result, count in sorted(totals.reloads.items()):
            reloads.add_metric([result], count)
        yield reloads
        yield GaugeMetricFamily("portico_config_last_reload_successful",
                                "1 if the last reload was put in place.",
                                value=1 if totals.last_reload_ok else 0)
        yield GaugeMetricFamily("portico_config_last_reload_success_timestamp_seconds",
                                "When the config in force was loaded (unix time).",
                                value=totals.last_reload_at)
        certs = GaugeMetricFamily("portico_tls_cert_not_after_timestamp_seconds",
                                  "When the certificate expires (unix time).", labels=["name"])
        for name, not_after in self.scrape.certificates:
            certs.add_metric([name], not_after)
        yield certs


def render_metrics(scrape: Scrape) -> bytes:
    """The Prometheus text exposition of ``scrape`` (prometheus_client, imported here
    only: a portico with metrics off never loads it)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(scrape))
    return generate_latest(registry)
