"""Per-second traffic for the overview, from the Prometheus text of ``GET /metrics``
(docs/guide/metrics.md): requests by route and status class, and the mean latency,
as the difference between two scrapes. Totals never decrease (they are summed across
workers and kept across a worker's restart); a drop (portico restarted) starts over.
Without metrics (prometheus_client missing, or metrics off) there is nothing to show."""

from __future__ import annotations

from dataclasses import dataclass, field

CLASSES = ("2xx", "3xx", "4xx", "5xx")


@dataclass
class Totals:
    requests: dict[str, dict[str, float]] = field(default_factory=dict)  # route -> class -> n
    duration: dict[str, tuple[float, float]] = field(default_factory=dict)  # route -> (sum, n)


def parse(text: bytes) -> Totals | None:
    """The request counters and duration sums of a scrape; None without the parser."""
    try:
        from prometheus_client.parser import (  # type: ignore[import-not-found,unused-ignore]
            text_string_to_metric_families,
        )
    except ImportError:
        return None
    totals = Totals()
    for family in text_string_to_metric_families(text.decode("utf-8", "replace")):
        for sample in family.samples:
            route = sample.labels.get("route")
            if route is None:
                continue
            if sample.name == "portico_requests_total":
                by_class = totals.requests.setdefault(route, {})
                code = sample.labels.get("code", "")
                by_class[code] = by_class.get(code, 0.0) + sample.value
            elif sample.name == "portico_request_duration_seconds_sum":
                totals.duration[route] = (sample.value, totals.duration.get(route, (0, 0))[1])
            elif sample.name == "portico_request_duration_seconds_count":
                totals.duration[route] = (totals.duration.get(route, (0, 0))[0], sample.value)
    return totals


@dataclass
class RouteRate:
    route: str
    per_second: float
    classes: dict[str, float]  # per second
    latency_ms: float | None  # mean over the interval


class Rates:
    """The rates between the previous scrape and this one."""

    def __init__(self) -> None:
        self.previous: Totals | None = None
        self.at = 0.0

    def update(self, totals: Totals, now: float) -> list[RouteRate]:
        previous, elapsed = self.previous, now - self.at
        self.previous, self.at = totals, now
        if previous is None or elapsed <= 0:
            return []
        rows = []
        for route, by_class in sorted(totals.requests.items()):
            before = previous.requests.get(route, {})
            delta = {c: by_class.get(c, 0.0) - before.get(c, 0.0) for c in by_class}
            if any(v < 0 for v in delta.values()):
                continue  # counters went back: a new portico; next tick counts again
            total = sum(delta.values())
            spent, count = totals.duration.get(route, (0.0, 0.0))
            spent0, count0 = previous.duration.get(route, (0.0, 0.0))
            latency = (spent - spent0) / (count - count0) * 1000 if count > count0 else None
            rows.append(RouteRate(route, total / elapsed,
                                  {c: delta.get(c, 0.0) / elapsed for c in CLASSES}, latency))
        return rows
