"""The plan of the routes portico answers itself (config/local_routes.py): no pydantic
here, the serving processes unpickle it (config/plan.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portico.config.backends import BackendPlan

# The backend of a route that never forwards: the routing table wants one per route;
# nothing ever connects to it (its request_filter answers every request).
NO_BACKEND = (BackendPlan("http", "127.0.0.1", 0),)


@dataclass(frozen=True)
class RedirectPlan:
    location: str
    status: int
    append_path: bool
    append_query: bool


@dataclass(frozen=True)
class StaticPlan:
    root: Path  # resolved against the config file's directory
    index: tuple[str, ...]
