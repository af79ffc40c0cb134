"""ServingPlan → runtime objects: the route table, policies, limits, certificates.

Imports nothing heavy (no pydantic, no cryptography): a worker process runs
this on the plan the main process sent it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from portico.config.plan import RoutePlan, ServingPlan
from portico.errors import ConfigError
from portico.http.limits import HeadLimits
from portico.policy.forwarded import Forwarding, Trust
from portico.proxy.accesslog import AccessLog
from portico.proxy.gateway import ClientTimeouts, Gateway
from portico.proxy.route_policy import compile_policies
from portico.routing.table import Route, RouteTable, Upstream
from portico.supervisor.gate import AppGate
from portico.tls.contexts import upstream_context
from portico.upstream.pool import UpstreamPool

if TYPE_CHECKING:
    from portico.tls.store import CertFacts, CertStore


def build_upstream(route: RoutePlan) -> Upstream:
    """The route's upstream; an https one gets its TLS context (a bad CA file: ConfigError)."""
    base = route.base_path.encode("latin-1")
    if route.scheme != "https":
        return Upstream(route.scheme, route.upstream_host, route.upstream_port, base)
    try:
        context = upstream_context(route.verify, route.ca)
    except ssl.SSLError as exc:
        raise ConfigError(
            "", f"route[{route.index}].ca", f"{route.ca}: not a PEM CA file ({exc})"
        ) from None
    label = f"verify={route.verify};ca={route.ca}"
    return Upstream(route.scheme, route.upstream_host, route.upstream_port, base, context, label)


def build_routes(plan: ServingPlan) -> RouteTable:
    routes = []
    for route in plan.routes:
        upstream = build_upstream(route)
        prefix = b"" if route.path == "/" else route.path.encode("ascii")
        routes.append(
            Route(
                index=route.index,
                prefix=prefix,
                host=route.host,
                upstream=upstream,
                preserve_path=route.preserve_path,
                preserve_host=route.preserve_host,
            )
        )
    return RouteTable(routes)


def build_gateway(
    plan: ServingPlan,
    loop: asyncio.AbstractEventLoop,
    gates: dict[str, AppGate] | None = None,
) -> Gateway:
    server = plan.server
    gateway = Gateway(
        loop=loop,
        routes=build_routes(plan),
        hsts=server.hsts.encode("latin-1") if server.hsts else None,
        redirect_to_https=server.redirect_to_https,
        forwarding=Forwarding(Trust(server.trusted_proxies), rfc7239=server.forwarded),
        head_limits=HeadLimits(
            max_request_line=server.max_request_line,
            max_header_size=server.max_header_size,
            max_head_size=server.max_head_size,
            max_headers=server.max_headers,
        ),
        timeouts=ClientTimeouts(
            head=server.head_timeout,
            keepalive=server.keepalive_timeout,
            max_requests=server.max_keepalive_requests,
            send=server.send_timeout,
            max_connections=server.max_connections or default_max_connections(),
        ),
        pool=UpstreamPool(loop, server.pool_max_idle, server.pool_idle_timeout),
        access_log=AccessLog(server.access_log, server.log_format),
        tick_interval=server.tick,
    )
    gateway.policies = compile_policies(plan, gateway, gates)
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

    sources = plan.certificates
    try:
        return CertStore(sources, log, facts)
    except CertError as exc:
        index = next(i for i, s in enumerate(sources) if exc.path in (s.cert, s.key))
        field = "key" if exc.path == sources[index].key else "cert"
        raise ConfigError("", f"tls.certificate[{index}].{field}", str(exc)) from None


def default_max_connections() -> int:
    """Half the file-descriptor limit (each proxied request holds two), less a margin."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 10_000
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(8, min(soft // 2 - 16, 100_000))
