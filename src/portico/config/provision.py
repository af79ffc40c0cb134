"""ServingPlan → runtime objects: the route table, policies, limits, certificates.

Imports nothing heavy (no pydantic, no cryptography): a worker process runs
this on the plan the main process sent it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from portico.config.backends import BackendPlan
from portico.config.plan import RoutePlan, ServingPlan
from portico.errors import ConfigError
from portico.metrics.counters import RequestMetrics, Send
from portico.policy.forwarded import Forwarding, Trust
from portico.proxy.accesslog import AccessLog
from portico.proxy.gateway import Gateway
from portico.proxy.rewrite import build_rewriting
from portico.proxy.route_policy import compile_policies
from portico.routing.table import Route, RouteTable
from portico.tls.contexts import upstream_context
from portico.upstream.availability import Availability
from portico.upstream.backend import Backend
from portico.upstream.pool import UpstreamPool

if TYPE_CHECKING:
    from portico.tls.store import CertError, CertFacts, CertSource, CertStore


def build_backend(route: RoutePlan, spec: BackendPlan) -> Backend:
    """One of the route's backends; an https one gets its TLS context (a bad CA file:
    ConfigError)."""
    if spec.scheme != "https":
        return Backend(spec.scheme, spec.host, spec.port)
    try:
        context = upstream_context(route.verify, route.ca)
    except ssl.SSLError as exc:
        raise ConfigError.at(
            ("route", route.index, "ca"), f"{route.ca}: not a PEM CA file ({exc})"
        ) from None
    label = f"verify={route.verify};ca={route.ca}"
    return Backend(spec.scheme, spec.host, spec.port, context, label)


def build_routes(
    plan: ServingPlan, pool: UpstreamPool, gates: dict[str, Availability] | None = None
) -> RouteTable:
    """The routes, their backends taken from ``pool`` (the one already there for an
    address it knows). A backend of an ``[[app]]`` gets that app's gate: every route to
    the address then waits for the app."""
    routes = []
    for route in plan.routes:
        backends = []
        for spec in route.backends:
            backend = pool.backend(build_backend(route, spec))
            gate = (gates or {}).get(spec.app) if spec.app else None
            if gate is not None:
                backend.gate = gate
            backends.append(backend)
        base_path = route.base_path.encode("latin-1")
        prefix = b"" if route.path == "/" else route.path.encode("ascii")
        routes.append(
            Route(
                index=route.index,
                prefix=prefix,
                host=route.host,
                backend=backends[0],
                backends=tuple(backends),
                base_path=base_path,
                preserve_path=route.preserve_path,
                preserve_host=route.preserve_host,
                forward_raw_path=route.forward_raw_path,
            )
        )
    return RouteTable(routes)


def build_gateway(
    plan: ServingPlan,
    loop: asyncio.AbstractEventLoop,
    gates: dict[str, Availability] | None = None,
    pool: UpstreamPool | None = None,
    metrics_send: Send | None = None,
) -> Gateway:
    """``pool``: the serving process's (a reload's gateway shares it, and with it the
    warm connections); a new one if None."""
    server = plan.server
    if pool is None:
        pool = UpstreamPool(loop, server.pool.max_idle, server.pool.idle_timeout)
    routes = build_routes(plan, pool, gates)
    rewriting, proxy_targets = build_rewriting(plan, pool, len(plan.routes))
    if proxy_targets:
        routes = RouteTable(routes.routes, proxy_targets)
    gateway = Gateway(
        loop=loop,
        routes=routes,
        hsts=server.hsts.encode("latin-1") if server.hsts else None,
        redirect_to_https=server.redirect_to_https,
        http2=server.http2,
        forwarding=Forwarding(Trust(server.trusted_proxies), rfc7239=server.forwarded),
        head_limits=server.head_limits,
        timeouts=server.client_timeouts,
        pool=pool,
        pool_settings=server.pool,
        access_log=AccessLog(server.access_log, server.log_format),
        tick_interval=server.tick,
    )
    if plan.metrics.enabled and metrics_send is not None:
        labels = [route.log_label.decode("latin-1") for route in gateway.routes.routes]
        gateway.metrics = RequestMetrics(labels, metrics_send)
    gateway.policies = compile_policies(plan, gateway, rewriting)
    return gateway


def build_cert_store(
    plan: ServingPlan, log: Callable[[str], None], facts: list[CertFacts] | None = None
) -> CertStore | None:
    """The listener's certificates, loaded now (with ``ssl``): a bad file is a
    ConfigError naming it. ``facts``: what the config check read off them (RunPlan);
    a worker has none."""
    if not plan.certificates:
        return None
    from portico.tls.store import CertError, CertStore

    try:
        return CertStore(plan.certificates, log, facts, http2=plan.server.http2.enabled)
    except CertError as exc:
        source = next(s for s in plan.certificates if exc.path in (s.cert, s.key))
        raise cert_config_error(source, exc) from None


def cert_config_error(source: CertSource, exc: CertError) -> ConfigError:
    """``exc``, about ``source``'s cert or key file, as a ConfigError at that key."""
    field = "key" if exc.path == source.key else "cert"
    return ConfigError.at((source.where, field), str(exc))
