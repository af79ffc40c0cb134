"""The channel between the main process and each worker: one JSON object a line.

Every message is a small frozen dataclass with a ``type``; ``encode`` and ``decode``
are the only places that know the wire form, so neither side compares bytes or
guesses at a dict's keys.

    main -> worker   Serve(generation, https_port, plan)   first, and again on a reload
                     AppChanged(app, state)                 on every change of an app
                     BackendHealth(address, check, up, ...) each active check's verdict
                     BackendDrain(address, drained)         the admin API drained/enabled it
                     ReloadCertificates(indices)           certificates the main checked
                     CountQuery(seq)                       how busy are you? (status, stop)
                     Cut()                                  stop draining now (Ctrl-C twice)
    worker -> main   Serving(generation, error)            a Serve is in force (or why not)
                     Counts(seq, connections, requests)    the answer to a CountQuery
                     MetricsDelta(rows, connections,       counters that moved, and the
                                  requests)                gauges, once a tick ([metrics])
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from portico.config.plan import ServingPlan, revive

PLAN_LINE_LIMIT = 64 * 2**20  # a Serve line holds the plan: a few hundred routes is far
# more than asyncio's default 64 KiB line limit


@dataclass(frozen=True)
class Serve:
    """Serve ``plan`` (at start, or a reload: drain the gateway it replaces)."""

    type: ClassVar[str] = "serve"
    generation: int  # counts the plans sent; Serving echoes it
    https_port: int  # the https listener's port, found once by the main process
    plan: ServingPlan


@dataclass(frozen=True)
class AppChanged:
    type: ClassVar[str] = "app"
    app: str
    state: str  # a BackendState value


@dataclass(frozen=True)
class BackendHealth:
    """An active check's verdict on one backend address (server/health.py)."""

    type: ClassVar[str] = "health"
    scheme: str  # the address: scheme, host, port and TLS identity (Backend.key)
    host: str
    port: int
    tls: str
    check: str  # the check's ident (upstream/probes.py)
    up: bool
    reason: str
    checked_at: float  # wall time of the probe


@dataclass(frozen=True)
class BackendDrain:
    """The admin API drained (or enabled) one backend address (server/backend_drain.py)."""

    type: ClassVar[str] = "drain"
    scheme: str  # the address, as in BackendHealth
    host: str
    port: int
    tls: str
    drained: bool


@dataclass(frozen=True)
class ReloadCertificates:
    type: ClassVar[str] = "tls_reload"
    indices: list[int]


@dataclass(frozen=True)
class CountQuery:
    type: ClassVar[str] = "count"
    seq: int


@dataclass(frozen=True)
class Cut:
    type: ClassVar[str] = "cut"


@dataclass(frozen=True)
class Serving:
    """A worker serves the plan of ``generation``; ``error`` says why it could not."""

    type: ClassVar[str] = "serving"
    generation: int
    error: str = ""


@dataclass(frozen=True)
class Counts:
    """Open client connections and requests in flight in one worker (the gateways a
    reload replaced and that still drain included)."""

    type: ClassVar[str] = "counts"
    seq: int
    connections: int
    requests: int


@dataclass(frozen=True)
class MetricsDelta:
    """What one worker counted since its last tick: route label -> a row of increments
    (metrics/counters.py); the main process adds them up (metrics/totals.py)."""

    type: ClassVar[str] = "metrics"
    rows: dict[str, list[int]]
    connections: int = 0  # open client connections now
    requests: int = 0  # requests in flight now


Message = (Serve | AppChanged | BackendHealth | BackendDrain | ReloadCertificates | CountQuery
           | Cut | Serving | Counts | MetricsDelta)
KINDS: dict[str, type[Message]] = {
    kind.type: kind
    for kind in (Serve, AppChanged, BackendHealth, BackendDrain, ReloadCertificates, CountQuery,
                 Cut, Serving, Counts, MetricsDelta)
}


class ChannelError(ValueError):
    """A line that is not a message this version knows."""


def encode(message: Message) -> bytes:
    fields = dataclasses.asdict(message)
    return json.dumps({"type": message.type, **fields}, default=str).encode() + b"\n"  # Path


def decode(line: bytes) -> Message:
    try:
        data: dict[str, Any] = json.loads(line)
        kind = KINDS[data.pop("type")]
        if kind is Serve:
            data["plan"] = revive(ServingPlan, data["plan"])
        return kind(**data)
    except (ValueError, KeyError, TypeError) as exc:
        raise ChannelError(f"not a channel message: {line[:80]!r} ({exc})") from None
