"""``[metrics]`` as the plan carries it (plain: workers read it without pydantic)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricsPlan:
    enabled: bool = False  # count every exchange; /metrics on the control socket
    listen: str | None = None  # HOST:PORT of a /metrics listener of its own (main process)
