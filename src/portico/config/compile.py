"""Schema → runtime objects: the route table, policies and limits (the provision step)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from portico.config.schema import Config, HeaderRules, parse_upstream
from portico.config.schema import Route as RouteConfig
from portico.errors import ConfigError
from portico.http.limits import HeadLimits
from portico.policy.forwarded import OWN_REQUEST_HEADERS, Forwarding, Trust
from portico.policy.header_ops import HeaderOps
from portico.proxy.accesslog import AccessLog
from portico.proxy.gateway import ClientTimeouts, Gateway
from portico.proxy.route_policy import RouteLimits, RoutePolicy
from portico.routing.proxypass import ReverseMap
from portico.routing.table import Route, RouteTable, Upstream
from portico.supervisor.commands import connect_host, split_bind
from portico.supervisor.gate import AppGate
from portico.tls.contexts import upstream_context
from portico.upstream.pool import UpstreamPool

if TYPE_CHECKING:
    from portico.tls.store import CertStore

def upstream_of(route: RouteConfig, config: Config, base_dir: Path | None = None) -> Upstream:
    """The route's upstream; with ``base_dir``, an https upstream gets its TLS context."""
    if route.upstream is not None:
        scheme, host, port, base = parse_upstream(route.upstream)
    else:
        app = next(app for app in config.app if app.name == route.app)
        if app.bind is None:  # not assigned yet (``portico check``): shown as port 0
            host, port = "127.0.0.1", 0
        else:
            host, port = connect_host(app.bind), split_bind(app.bind)[1]
        scheme, base = "http", "/"
    if scheme != "https" or base_dir is None:
        return Upstream(scheme, host, port, base.encode("latin-1"))
    ca = (base_dir / route.ca) if route.ca else None
    if ca is not None and not ca.is_file():
        raise ConfigError("", f"route[{config.route.index(route)}].ca", f"{ca}: no such file")
    try:
        context = upstream_context(route.verify, ca)
    except ssl.SSLError as exc:
        raise ConfigError(
            "", f"route[{config.route.index(route)}].ca", f"{ca}: not a PEM CA file ({exc})"
        ) from None
    label = f"verify={route.verify};ca={ca}"
    return Upstream(scheme, host, port, base.encode("latin-1"), context, label)


def build_routes(
    config: Config, gates: dict[str, AppGate] | None = None, base_dir: Path | None = None
) -> RouteTable:
    server_limits = config.server.limits
    routes = []
    for index, route in enumerate(config.route):
        upstream = upstream_of(route, config, base_dir or Path.cwd())
        prefix = b"" if route.path == "/" else route.path.encode("ascii")
        overrides = route.limits
        limits = RouteLimits(
            max_body_size=_pick(overrides.max_body_size, server_limits.max_body_size),
            body_timeout=_pick(overrides.body_timeout, server_limits.body_timeout),
            connect_timeout=_pick(overrides.connect_timeout, server_limits.connect_timeout),
            response_timeout=_pick(overrides.response_timeout, server_limits.response_timeout),
        )
        policy = RoutePolicy(
            limits=limits,
            request_ops=_ops(route.request_headers, OWN_REQUEST_HEADERS),
            response_ops=_ops(route.response_headers),
            reverse=ReverseMap(upstream, prefix, stripped=bool(prefix) and not route.preserve_path),
            app=(gates or {}).get(route.app) if route.app else None,
        )
        routes.append(
            Route(
                index=index,
                prefix=prefix,
                host=route.host,
                upstream=upstream,
                preserve_path=route.preserve_path,
                preserve_host=route.preserve_host,
                policy=policy,
            )
        )
    return RouteTable(routes)


def build_gateway(
    config: Config,
    loop: asyncio.AbstractEventLoop,
    gates: dict[str, AppGate] | None = None,
    base_dir: Path | None = None,
) -> Gateway:
    server = config.server
    limits = server.limits
    return Gateway(
        loop=loop,
        routes=build_routes(config, gates, base_dir),
        hsts=server.hsts.encode("latin-1") if server.hsts else None,
        redirect_to_https=server.redirect_to_https,
        forwarding=Forwarding(Trust(server.trusted_proxies), rfc7239=server.forwarded),
        head_limits=HeadLimits(
            max_request_line=limits.max_request_line,
            max_header_size=limits.max_header_size,
            max_head_size=limits.max_head_size,
            max_headers=limits.max_headers,
        ),
        timeouts=ClientTimeouts(
            head=limits.head_timeout,
            keepalive=limits.keepalive_timeout,
            max_requests=limits.max_keepalive_requests,
            send=limits.send_timeout,
            max_connections=limits.max_connections or default_max_connections(),
        ),
        pool=UpstreamPool(loop, server.pool.max_idle, server.pool.idle_timeout),
        access_log=AccessLog(server.access_log, server.log_format),
        tick_interval=server.tick,
    )


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


def _ops(rules: HeaderRules, own: dict[bytes, bytes] | None = None) -> HeaderOps:
    return HeaderOps(rules.set, rules.add, rules.remove, own)


T = TypeVar("T")


def _pick(override: T | None, default: T) -> T:
    return default if override is None else override


def build_cert_store(
    config: Config, base_dir: Path, state_dir: Path, log: Callable[[str], None]
) -> CertStore | None:
    """The listener certificates, checked now: a bad file is a ConfigError naming it."""
    if not config.tls.certificate:
        return None
    from portico.tls.authority import issue  # cryptography: only loaded when needed
    from portico.tls.store import CertError, CertSource, CertStore
    sources = []
    for index, spec in enumerate(config.tls.certificate):
        where = f"tls.certificate[{index}]"
        if spec.self_signed:
            issued = issue(state_dir / "tls", spec.hosts)
            if issued.created:
                log(f"tls: {where}: made a certificate for {', '.join(spec.hosts)} from the "
                    f"local CA {issued.ca} (trust it: see `portico cert create --help`)")
            cert, key = issued.cert, issued.key
        else:
            assert spec.cert is not None and spec.key is not None
            cert, key = base_dir / spec.cert, base_dir / spec.key
        sources.append(CertSource(tuple(spec.hosts), cert, key, where))
    try:
        return CertStore(sources, log)
    except CertError as exc:
        index = next(i for i, s in enumerate(sources) if exc.path in (s.cert, s.key))
        field = "key" if exc.path == sources[index].key else "cert"
        raise ConfigError("", f"tls.certificate[{index}].{field}", str(exc)) from None
