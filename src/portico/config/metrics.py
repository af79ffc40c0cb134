"""``[metrics]``: Prometheus metrics (docs/guide/metrics.md)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, field_validator

from portico.metrics.plan import MetricsPlan


class Metrics(BaseModel):
    """``[metrics]``: Prometheus metrics, off by default (off costs nothing)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = False
    """Count every request (by route, status class and method; durations, bytes) and
    answer ``GET /metrics`` on the control socket, summed over every worker."""
    listen: str | None = None
    """Also serve ``GET /metrics`` (and nothing else) on this ``HOST:PORT``, e.g.
    ``"127.0.0.1:9464"``, for a Prometheus server to scrape. Plain HTTP, no auth:
    keep it on loopback or a private network. Needs ``enabled = true``."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, listen: str | None) -> str | None:
        if listen is None:
            return None
        host, _, port = listen.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            valid = port.isdigit() and 0 < int(port) < 65536
        except ValueError:
            valid = host == "localhost" and port.isdigit() and 0 < int(port) < 65536
        if not valid:
            raise ValueError(f"invalid listen {listen!r}: use IP:PORT, e.g. \"127.0.0.1:9464\"")
        return listen


def metrics_plan(metrics: Metrics) -> MetricsPlan:
    return MetricsPlan(enabled=metrics.enabled or metrics.listen is not None,
                       listen=metrics.listen)
