"""The route page's URL tester: for a URL and Host, which route wins, which routes it
shadowed, and the upstream request portico would send. It runs the real pieces: the
route table's ``resolve`` (canonical path, whole-segment prefixes, host tiers), the
forwarded-header policy and the route's header rules, on the plan compiled from the
running config; nothing is sent."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from portico.config.plan import RoutePlan, ServingPlan
from portico.config.provision import build_backend
from portico.errors import ProxyError
from portico.policy.context import RequestFacts
from portico.policy.forwarded import OWN_REQUEST_HEADERS, Forwarding, Trust
from portico.policy.header_ops import HeaderOps
from portico.routing.path import under_prefix
from portico.routing.table import Route, RouteTable, host_without_port


@dataclass
class UrlTrial:
    url: str
    host: str
    winner: str | None = None
    why: str = ""
    shadowed: list[str] = field(default_factory=list)
    upstream: str | None = None  # method and URL of the upstream request
    headers: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None


def _routes(plan: ServingPlan) -> list[Route]:
    routes = []
    for spec in plan.routes:
        backends = tuple(build_backend(spec, backend) for backend in spec.backends)
        routes.append(Route(index=spec.index,
                            prefix=b"" if spec.path == "/" else spec.path.encode(),
                            host=spec.host, backend=backends[0], backends=backends,
                            base_path=spec.base_path.encode("latin-1"),
                            preserve_path=spec.preserve_path,
                            preserve_host=spec.preserve_host))
    return routes


def _host_matches(route: Route, host: str) -> bool:
    if route.host is None:
        return True
    if route.host.startswith("*."):
        return host.endswith(route.host[1:]) and len(host) > len(route.host) - 1
    return route.host == host


def try_url(plan: ServingPlan, url: str, host: str | None = None) -> UrlTrial:
    """Route ``url`` (a path or a full URL) with ``host`` (else the URL's, else localhost)."""
    parts = urlsplit(url if "://" in url or url.startswith("/") else "/" + url)
    scheme = parts.scheme or "http"
    host_header = host or parts.netloc or "localhost"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    result = UrlTrial(url=url, host=host_header)
    routes = _routes(plan)
    table = RouteTable(routes)
    try:
        match = table.resolve(host_header.encode("latin-1"), target.encode("latin-1"))
    except ProxyError as exc:
        result.error = f"{exc.status}: {exc}"
        return result
    route = match.route
    hostname = host_without_port(host_header.encode("latin-1"))
    path = target.split("?", 1)[0].encode("latin-1")
    result.winner = route.label
    tier = "exact host" if route.host and not route.host.startswith("*.") else \
        "wildcard host" if route.host else "any host"
    result.why = f"{tier}, longest whole-segment prefix ({route.prefix.decode() or '/'})"
    result.shadowed = [other.label for other in routes
                       if other is not route and _host_matches(other, hostname)
                       and under_prefix(path, other.prefix)]
    spec = next(s for s in plan.routes if s.index == route.index)
    backend = route.backend
    result.upstream = (f"GET {backend.scheme}://{backend.authority.decode()}"
                       f"{match.target.decode('latin-1')}")
    result.headers = _headers(plan, spec, route, host_header, scheme, match.stripped)
    return result


def _headers(plan: ServingPlan, spec: RoutePlan, route: Route, host: str, scheme: str,
             stripped: bool) -> list[tuple[str, str]]:
    port = host.rpartition(":")[2] if host.rpartition(":")[2].isdigit() else (
        "443" if scheme == "https" else "80")
    facts = RequestFacts(scheme.encode(), host.encode("latin-1"), port.encode(),
                         b"CLIENT-ADDRESS", route.prefix if stripped else b"", b"REQUEST-ID")
    forwarding = Forwarding(Trust(plan.server.trusted_proxies), plan.server.forwarded)
    upstream_host = host.encode("latin-1") if route.preserve_host else route.backend.authority
    headers = forwarding.upstream_headers([(b"Host", host.encode("latin-1"))], [b"host"],
                                          facts, False, upstream_host)
    rules = spec.request_headers
    ops = HeaderOps(rules.set, rules.add, rules.remove, OWN_REQUEST_HEADERS)
    headers = ops.apply(headers, facts)
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
