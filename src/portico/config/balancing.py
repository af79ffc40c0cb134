"""The config keys of a route with several backends: ``upstreams``, ``balance``,
passive (``max_fails``...) and active (``[route.health]``) health, ``retries``.

The pydantic side (the ``Route`` model in config/schema.py takes these fields) and
``balance_plan``/``route_backends``, which compile a route's part of the plan
(config/backends.py).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from portico.config.backends import (
    BackendPlan,
    BalancePlan,
    HealthCheckPlan,
    PassiveHealthPlan,
)
from portico.config.units import Duration
from portico.policy.header_ops import check_name

if TYPE_CHECKING:
    from portico.config.plan import ServingPlan
    from portico.config.schema import Config, Route

Policy = Literal[
    "round_robin", "least_conn", "random_two", "first", "ip_hash", "uri_hash", "header", "cookie",
]
DEFAULT_COOKIE = "portico_backend"
_PASSIVE, _HEALTH, _BALANCE = PassiveHealthPlan(), HealthCheckPlan(), BalancePlan()


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class WeightedUpstream(_Table):
    """An item of ``upstreams`` with a weight: ``{ url = "http://10.0.0.6:8000", weight = 3 }``."""

    url: str
    """``http://host:port/base``, as ``upstream``."""
    weight: int = Field(1, ge=1, le=1000)
    """Its share of requests under ``round_robin``, and its weight in the hash policies."""

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        from portico.config.schema import parse_upstream

        parse_upstream(url)
        return url


class HealthCheck(_Table):
    """``[route.health]``: active checks of each of the route's backends, from the main
    process; one probe per address and check however many routes use it."""

    path: str | None = None
    """Path to ask, e.g. "/healthz"; left out, no active checks."""
    interval: Duration = Field(_HEALTH.interval, gt=0)
    """Time between two probes of a backend."""
    timeout: Duration = Field(_HEALTH.timeout, gt=0)
    """A probe without a full answer within this has failed."""
    expect_status: list[int] = []
    """Statuses that pass; left out, any 2xx or 3xx."""
    expect_body: str | None = None
    """Text the response body must contain to pass."""
    passes: int = Field(_HEALTH.passes, ge=1)
    """Passed probes in a row that bring a down backend back (rise)."""
    fails: int = Field(_HEALTH.fails, ge=1)
    """Failed probes in a row that take a backend out (fall)."""
    headers: dict[str, str] = {}
    """Header fields each probe sends (e.g. Host)."""

    @field_validator("path")
    @classmethod
    def _path(cls, path: str | None) -> str | None:
        if path is not None and not path.startswith("/"):
            raise ValueError(f"invalid health path {path!r}: it must start with '/'")
        return path

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name in headers:
            problem = check_name(name)
            if problem:
                raise ValueError(f"{name!r} {problem}")
        return headers


class BalancingKeys(_Table):
    """The ``[[route]]`` keys of this module; ``Route`` inherits them."""

    upstreams: list[str | WeightedUpstream] | None = None
    """Several upstreams to balance over, instead of ``upstream``: URLs or
    ``{ url = "...", weight = 3 }``. All share one base path."""
    balance: Policy = "round_robin"
    """How a request picks its backend: ``round_robin`` (weighted), ``least_conn``,
    ``random_two`` (the less busy of two at random), ``first`` (failover order),
    ``ip_hash``, ``uri_hash``, ``header``, ``cookie`` (sticky, signed)."""
    balance_key: str | None = None
    """The header ``balance = "header"`` hashes, or the cookie ``balance = "cookie"``
    sets (default "portico_backend")."""
    max_fails: int = Field(_PASSIVE.max_fails, ge=0)
    """Failed requests (connect errors, ``unhealthy_status``, ``unhealthy_latency``)
    within ``fail_duration`` that take a backend out for ``fail_duration``; 0: never."""
    fail_duration: Duration = _PASSIVE.fail_duration
    """How long failures are remembered, and how long a failed backend stays out."""
    unhealthy_status: list[int] = []
    """Response statuses that count as failures (e.g. [502, 503])."""
    unhealthy_latency: Duration | None = None
    """A response head slower than this counts as a failure."""
    health: HealthCheck = HealthCheck()
    retries: int = Field(_BALANCE.retries, ge=0)
    """Other backends to try after the first fails: after a failed connect for any
    request; after the request was sent only for an idempotent method without a body."""
    try_duration: Duration = _BALANCE.try_duration
    """Stop trying other backends after this long; 0: only ``retries`` bounds it."""

    @field_validator("balance_key")
    @classmethod
    def _balance_key(cls, name: str | None) -> str | None:
        if name is not None:
            problem = check_name(name)
            if problem:
                raise ValueError(f"{name!r} {problem}")
        return name


def check_balancing(route: Route) -> None:
    """The rules across keys; a ValueError names the keys and what would be valid."""
    from portico.config.schema import parse_upstream

    targets = [route.upstream is not None, route.upstreams is not None, route.app is not None]
    if sum(targets) != 1:
        raise ValueError(
            "a route needs exactly one of 'upstream' or 'app' (or 'upstreams': several)")
    if route.upstreams is not None:
        if not route.upstreams:
            raise ValueError("'upstreams' needs at least one URL")
        bases = {parse_upstream(url)[3] for url in upstream_urls(route)}
        if len(bases) > 1:
            raise ValueError(f"all of 'upstreams' must share one base path, not {sorted(bases)}")
    if route.balance == "header" and route.balance_key is None:
        raise ValueError('balance = "header" needs balance_key, the header to hash')
    tls = any(url.startswith("https://") for url in upstream_urls(route))
    if not tls and (route.ca is not None or not route.verify):
        raise ValueError("'verify' and 'ca' apply only to an https:// upstream")


def upstream_urls(route: Route) -> list[str]:
    """The route's upstream URLs, ``upstream`` a list of one (an app route: none)."""
    if route.upstream is not None:
        return [route.upstream]
    return [item if isinstance(item, str) else item.url for item in route.upstreams or []]


def route_backends(route: Route, config: Config) -> tuple[tuple[BackendPlan, ...], str]:
    """The route's backends and base path. An app route's is the app's bind address
    (port 0 while unassigned: ``portico check``)."""
    from portico.config.instances import app_backends
    from portico.config.schema import parse_upstream

    if route.app is not None:
        app = next(app for app in config.app if app.name == route.app)
        return app_backends(app.name, app.bind, app.instances), "/"  # one per instance
    backends, base = [], "/"
    items: list[str | WeightedUpstream] = (
        [route.upstream] if route.upstream is not None else list(route.upstreams or []))
    for item in items:
        url, weight = (item, 1) if isinstance(item, str) else (item.url, item.weight)
        scheme, host, port, base = parse_upstream(url)
        backends.append(BackendPlan(scheme, host, port, weight))
    return tuple(backends), base


def balance_plan(route: Route) -> BalancePlan:
    """The route's policy, health and retries."""
    key = route.balance_key or (DEFAULT_COOKIE if route.balance == "cookie" else "")
    health = route.health
    return BalancePlan(
        policy=route.balance,
        key=key,
        retries=route.retries,
        try_duration=route.try_duration,
        passive=PassiveHealthPlan(
            max_fails=route.max_fails,
            fail_duration=route.fail_duration,
            unhealthy_status=tuple(route.unhealthy_status),
            unhealthy_latency=route.unhealthy_latency,
        ),
        health=HealthCheckPlan(
            path=health.path,
            interval=health.interval,
            timeout=health.timeout,
            expect_status=tuple(health.expect_status),
            expect_body=health.expect_body,
            passes=health.passes,
            fails=health.fails,
            headers=dict(health.headers),
        ),
    )


def with_balance_secret(plan: ServingPlan, state_dir: Path) -> ServingPlan:
    """``plan`` with the key that signs sticky cookies, kept in the state dir so that
    every worker and every reload signs alike; unchanged if no route is sticky."""
    if not any(route.balance.policy == "cookie" for route in plan.routes):
        return plan
    path = state_dir / "balance.key"
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if len(secret) < 32:
        secret = secrets.token_hex(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secret + "\n")
    return dataclasses.replace(plan, balance_secret=secret)
