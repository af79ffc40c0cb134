"""Everything a route decides about a request, compiled once when the gateway is built.

``compile_policies`` turns the plan into one ``RoutePolicy`` per route (by route
index) plus the server-wide request filters: each phase of ``proxy/phases.py``
a tuple, empty when the route has nothing to do in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from portico.policy.forwarded import OWN_REQUEST_HEADERS
from portico.policy.header_ops import HeaderOps
from portico.proxy.access import access_filters
from portico.proxy.accesslog import LogSink
from portico.proxy.auth import auth_filters
from portico.proxy.phases import (
    BackendSelector,
    EchoRequestId,
    ErrorFilter,
    ForwardedFields,
    Hsts,
    OnlyBackend,
    RedirectToHttps,
    RequestFilter,
    RequestHeaderRules,
    ResponseFilter,
    ResponseHeaderRules,
    ReverseFields,
    UpstreamRequestFilter,
)
from portico.proxy.rewrite import Rewriting, RuleRequestFields, rule_response_filters
from portico.routing.proxypass import ReverseMap
from portico.settings import RouteLimits

if TYPE_CHECKING:
    from portico.config.plan import HeaderRulesPlan, ServingPlan
    from portico.proxy.gateway import Gateway


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """One route's limits and phases, in the order they run."""

    limits: RouteLimits
    request_filter: tuple[RequestFilter, ...]
    select_backend: BackendSelector
    upstream_request_filter: tuple[UpstreamRequestFilter, ...]  # ForwardedFields first
    response_filter: tuple[ResponseFilter, ...]  # ReverseFields first
    on_error: tuple[ErrorFilter, ...]
    log: tuple[LogSink, ...]


@dataclass(frozen=True, slots=True)
class Policies:
    """The gateway's: request filters run before routing, then each route's policy.
    ``rewrite``: the rewrite rules (proxy/rewrite.py), run after request_filter."""

    request_filter: tuple[RequestFilter, ...] = ()
    routes: tuple[RoutePolicy, ...] = ()
    rewrite: Rewriting | None = None


def compile_policies(
    plan: ServingPlan, gw: Gateway, rewriting: Rewriting | None = None
) -> Policies:
    """Build every phase once; ``gw`` supplies the shared pieces (forwarding, the log).
    Routes after the plan's are a rewrite rule's proxy targets (no header rules)."""
    log: tuple[LogSink, ...] = (gw.access_log,) if gw.access_log.enabled else ()
    hsts: tuple[ResponseFilter, ...] = (Hsts(gw.hsts),) if gw.hsts else ()
    routes = []
    targets = gw.routes.routes[len(plan.routes):]
    for spec, route in [*zip(plan.routes, gw.routes.routes, strict=False),
                        *((None, target) for target in targets)]:
        backend = route.backend
        upstream_request: list[UpstreamRequestFilter] = [
            ForwardedFields(gw.forwarding, route.preserve_host)
        ]
        request_ops = _ops(spec.request_headers if spec else None, OWN_REQUEST_HEADERS)
        if rewriting is not None and rewriting.sets_request_fields:
            upstream_request.append(RuleRequestFields())
        if not request_ops.empty:
            upstream_request.append(RequestHeaderRules(request_ops))
        stripped = bool(route.prefix) and not route.preserve_path
        response: list[ResponseFilter] = [ReverseFields(ReverseMap(
            backend, route.base_path, route.prefix, stripped))]
        response_ops = _ops(spec.response_headers if spec else None)
        if not response_ops.empty:
            response.append(ResponseHeaderRules(response_ops))
        response += rule_response_filters(plan, spec, rewriting)
        response.append(EchoRequestId())
        routes.append(RoutePolicy(
            limits=spec.limits if spec else plan.rewrite.limits,
            request_filter=(access_filters(spec.access, gw.forwarding.trust)
                            + auth_filters(spec.basic_auth)) if spec else (),
            select_backend=OnlyBackend(backend),
            upstream_request_filter=tuple(upstream_request),
            response_filter=tuple(response) + hsts,
            on_error=(),
            log=log,
        ))
    redirect: tuple[RequestFilter, ...] = (RedirectToHttps(gw),) if gw.redirect_to_https else ()
    return Policies(redirect, tuple(routes), rewriting)


def _ops(rules: HeaderRulesPlan | None, own: dict[bytes, bytes] | None = None) -> HeaderOps:
    if rules is None:
        return HeaderOps(own=own)
    return HeaderOps(rules.set, rules.add, rules.remove, own)
