"""What a running portico needs from the config: resolved, plain, and free of pydantic.

``portico run`` validates the TOML (pydantic), gives each app its port,
issues and checks the certificates (cryptography) and reduces the result to a
``RunPlan``: the apps to supervise, the listeners, and the ``ServingPlan``
(upstream addresses resolved, per-route limits merged with the server's,
certificate files known). The process that serves gets the plan as JSON and
never imports either library, which keeps it near 30 MiB instead of 55
(docs/performance.md): on POSIX ``portico run`` hands over by ``exec``, and a
reload or a changed certificate is checked by a short-lived child
(config/prepare.py). Workers get the ``ServingPlan`` alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portico.admin.plan import AdminPlan
from portico.config.access_plans import AccessPlan, BasicAuthPlan
from portico.config.backends import BackendPlan, BalancePlan
from portico.config.local_plan import RedirectPlan, StaticPlan
from portico.config.rules_plan import RewritePlan, RouteRewritePlan
from portico.metrics.plan import MetricsPlan
from portico.settings import ClientTimeouts, HeadLimits, Http2Settings, PoolSettings, RouteLimits
from portico.tls.store import CertFacts, CertSource

DEFAULT_NAME = "<built-in default>"  # how messages name the built-in config


@dataclass(frozen=True)
class HeaderRulesPlan:
    set: dict[str, str]
    add: dict[str, str | list[str]]
    remove: list[str]


@dataclass(frozen=True)
class RoutePlan:
    index: int
    path: str
    host: str | None
    app: str | None  # the supervised app this route points at, if any
    backends: tuple[BackendPlan, ...]  # where it sends requests (config/backends.py)
    balance: BalancePlan  # how it picks one, their health, retries
    base_path: str  # the upstreams' base path, resolved
    verify: bool
    ca: Path | None
    preserve_path: bool
    preserve_host: bool
    forward_raw_path: bool
    request_headers: HeaderRulesPlan
    response_headers: HeaderRulesPlan
    limits: RouteLimits  # the route's limits, the server's where the route sets none
    rewrite: RouteRewritePlan
    access: AccessPlan | None = None  # config/access.py: IP allow/deny lists
    basic_auth: BasicAuthPlan | None = None  # config/auth.py
    redirect: RedirectPlan | None = None  # config/local_routes.py: answered, not proxied
    static: StaticPlan | None = None
    compress: bool = False  # proxy/compress.py: the route's, else the server's


@dataclass(frozen=True)
class ServerPlan:
    hsts: str | None
    redirect_to_https: bool
    trusted_proxies: list[str]
    forwarded: bool
    access_log: str
    log_format: str
    tick: float
    drain_timeout: float
    head_limits: HeadLimits  # from [server.limits]
    client_timeouts: ClientTimeouts  # from [server.limits]
    pool: PoolSettings  # [server.pool]
    http2: Http2Settings = field(default_factory=Http2Settings)  # [server.http2]


@dataclass(frozen=True)
class ServingPlan:
    server: ServerPlan
    routes: list[RoutePlan]
    # app instance name (config/instances.py) -> how long a request waits while it restarts
    app_waits: dict[str, float]
    certificates: list[CertSource]
    tls_reload_interval: float
    rewrite: RewritePlan
    metrics: MetricsPlan = dataclasses.field(default_factory=MetricsPlan)
    # Signs balance = "cookie"'s cookies, the same in every worker (config/balancing.py);
    # "" until ``run_plan`` reads it from the state dir (then each process draws its own).
    balance_secret: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)  # Path -> str

    @classmethod
    def from_json(cls, text: str | bytes) -> ServingPlan:
        plan = revive(cls, json.loads(text))
        assert isinstance(plan, ServingPlan)
        return plan


@dataclass(frozen=True)
class AppPlan:
    """An ``[[app]]`` as the supervisor runs it; ``bind`` is always set (ports assigned)."""

    name: str
    wsgi: str | None
    asgi: str | None
    command: list[str] | None
    server: str | None
    workers: int
    cwd: str | None
    env: dict[str, str]
    bind: str
    health: str | None
    start_timeout: float
    listener_check: bool
    health_interval: float
    health_timeout: float
    unhealthy_after: int
    stop_timeout: float
    max_restarts: int
    restart_window: float
    restart_delay_max: float
    request_wait: float
    log_max_size: int
    log_backups: int
    # uvicorn --root-path for an ``asgi`` app routed under one stripped prefix, or "".
    root_path: str
    instances: int = 1
    args: list[str] = dataclasses.field(default_factory=list)  # extra server arguments
    python: str | None = None  # the interpreter (or venv) the server runs with
    binds: list[str] = dataclasses.field(default_factory=list)  # each instance's HOST:PORT


@dataclass(frozen=True)
class RunPlan:
    """Everything ``portico run`` serves from, after the config was checked."""

    serving: ServingPlan
    apps: list[AppPlan]
    listen: list[str]
    workers: int | str  # as configured: a count or "auto"
    base_dir: Path  # relative paths in the config are read from here
    state_dir: Path
    config_file: Path | None  # None: the built-in default
    # The restart-only keys as the file gave them (JSON), compared key by key at reload.
    restart_only: dict[str, str]
    # What the checker read off each certificate (serving.certificates, same order).
    cert_facts: list[CertFacts]
    admin: AdminPlan = dataclasses.field(default_factory=AdminPlan)  # [admin]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)  # Path, datetime -> str

    @classmethod
    def from_json(cls, text: str | bytes) -> RunPlan:
        plan = revive(cls, json.loads(text))
        assert isinstance(plan, RunPlan)
        return plan


def revive(kind: Any, value: Any) -> Any:
    """JSON back into the declared types: dataclasses, Paths, lists and tuples of them."""
    if value is None:
        return None
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: revive(hints[f.name], value[f.name])
                       for f in dataclasses.fields(kind)})
    if kind is Path:
        return Path(value)
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if kind is tuple:  # compiled (mypyc), a tuple[str, ...] field's hint is bare tuple
        return tuple(value)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is list:
        return [revive(args[0], item) for item in value]
    if origin is tuple:
        return tuple(revive(args[0], item) for item in value)
    if origin in (typing.Union, types.UnionType):
        chosen = [arg for arg in args if arg is not type(None)]
        return revive(chosen[0], value) if len(chosen) == 1 else value
    return value
