"""A route's backends and how it balances over them, as the plan carries them.

Plain dataclasses (no pydantic): workers and the main process read them from the
``ServingPlan``. ``config/balancing.py`` makes them from the schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field

POLICIES = (
    "round_robin", "least_conn", "random_two", "first", "ip_hash", "uri_hash", "header", "cookie",
)
HASH_POLICIES = ("ip_hash", "uri_hash", "header", "cookie")


@dataclass(frozen=True)
class BackendPlan:
    """One address a route sends requests to."""

    scheme: str
    host: str
    port: int
    weight: int = 1
    # The supervised app whose availability gate this address follows (an ``app`` route
    # names it; an app with several instances may name one gate per instance), or None.
    app: str | None = None


@dataclass(frozen=True)
class PassiveHealthPlan:
    """Requests decide a backend is down: ``max_fails`` failures within
    ``fail_duration`` take it out for ``fail_duration`` (0: never)."""

    max_fails: int = 3
    fail_duration: float = 10.0
    unhealthy_status: tuple[int, ...] = ()  # responses that count as failures
    unhealthy_latency: float | None = None  # a response head slower than this is a failure


@dataclass(frozen=True)
class HealthCheckPlan:
    """Active checks: ``path`` (None: none) asked every ``interval``; ``fails`` failed
    probes in a row take the backend out, ``passes`` good ones bring it back."""

    path: str | None = None
    interval: float = 10.0
    timeout: float = 5.0
    expect_status: tuple[int, ...] = ()  # empty: any 2xx or 3xx
    expect_body: str | None = None  # a substring the body must hold
    passes: int = 2
    fails: int = 3
    headers: dict[str, str] = field(default_factory=dict)

    def identity(self) -> tuple[object, ...]:
        """What makes two checks the same check (one probe per address and identity)."""
        return (self.path, self.interval, self.timeout, self.expect_status, self.expect_body,
                self.passes, self.fails, tuple(sorted(self.headers.items())))


@dataclass(frozen=True)
class BalancePlan:
    """The route's policy over its backends, with health and retries."""

    policy: str = "round_robin"  # one of POLICIES
    key: str = ""  # the header (``header``) or cookie (``cookie``) the policy reads
    retries: int = 2  # other backends tried after the first, at most
    try_duration: float = 0.0  # stop trying others after this long (0: no bound but retries)
    passive: PassiveHealthPlan = field(default_factory=PassiveHealthPlan)
    health: HealthCheckPlan = field(default_factory=HealthCheckPlan)
