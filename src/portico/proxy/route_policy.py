"""Everything a route decides about a request, compiled once when the gateway is built.

``compile_policies`` turns the plan into one ``RoutePolicy`` per route (by route
index) plus the server-wide request filters: each phase of ``proxy/phases.py``
a tuple, empty when the route has nothing to do in it.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from portico.policy.forwarded import OWN_REQUEST_HEADERS
from portico.policy.header_ops import HeaderOps
from portico.proxy.access import access_filters
from portico.proxy.accesslog import LogSink
from portico.proxy.auth import auth_filters
from portico.proxy.compress import Compression, compression
from portico.proxy.phases import (
    BackendSelector,
    Balanced,
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
from portico.proxy.redirect import redirect_filters
from portico.proxy.rewrite import Rewriting, RuleRequestFields, rule_response_filters
from portico.proxy.static import static_filters
from portico.routing.proxypass import ReverseMap
from portico.settings import RouteLimits
from portico.upstream.backend import Backend
from portico.upstream.balancer import Member, Sticky, make_policy
from portico.upstream.health import PassiveHealth
from portico.upstream.probes import Check, CheckState

if TYPE_CHECKING:
    from portico.config.backends import HealthCheckPlan
    from portico.config.plan import HeaderRulesPlan, RoutePlan, ServingPlan
    from portico.proxy.gateway import Gateway
    from portico.routing.table import Route


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
    passive: PassiveHealth | None = None  # a balanced route's: requests judge backends
    sticky: Sticky | None = None  # balance = "cookie": sets the cookie on the response
    compress: Compression | None = None  # proxy/compress.py: wraps the client


@dataclass(frozen=True, slots=True)
class Policies:
    """The gateway's: request filters run before routing, then each route's policy.
    ``rewrite``: the rewrite rules (proxy/rewrite.py), run after request_filter."""

    request_filter: tuple[RequestFilter, ...] = ()
    routes: tuple[RoutePolicy, ...] = ()
    log: tuple[LogSink, ...] = ()  # the log phase of the answers made before routing
    rewrite: Rewriting | None = None


def compile_policies(
    plan: ServingPlan, gw: Gateway, rewriting: Rewriting | None = None,
    rng: random.Random | None = None,
) -> Policies:
    """Build every phase once; ``gw`` supplies the shared pieces (forwarding, the log);
    ``rng`` the balancing policies' lots (seeded in tests). Routes after the plan's are
    a rewrite rule's proxy targets (one backend, no header rules)."""
    rng = rng or random.Random()
    secret = plan.balance_secret.encode("ascii") or os.urandom(32)
    log: tuple[LogSink, ...] = (gw.access_log,) if gw.access_log.enabled else ()
    if gw.metrics is not None:
        log += (gw.metrics,)
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
            backend, route.base_path, route.prefix, stripped, route.backends[1:]))]
        response_ops = _ops(spec.response_headers if spec else None)
        if not response_ops.empty:
            response.append(ResponseHeaderRules(response_ops))
        response += rule_response_filters(plan, spec, rewriting)
        response.append(EchoRequestId())
        selector, passive, sticky = (_selector(spec, route, gw, secret, rng) if spec
                                     else (OnlyBackend(backend), None, None))
        routes.append(RoutePolicy(
            limits=spec.limits if spec else plan.rewrite.limits,
            request_filter=(access_filters(spec.access, gw.forwarding.trust)
                            + auth_filters(spec.basic_auth)
                            + redirect_filters(spec.redirect, route.prefix)
                            + static_filters(spec.static, route.prefix)) if spec else (),
            select_backend=selector,
            upstream_request_filter=tuple(upstream_request),
            response_filter=tuple(response) + hsts,
            on_error=(),
            log=log,
            passive=passive,
            sticky=sticky,
            compress=compression(spec.compress) if spec else None,
        ))
    redirect: tuple[RequestFilter, ...] = (RedirectToHttps(gw),) if gw.redirect_to_https else ()
    return Policies(redirect, tuple(routes), log, rewriting)


def _selector(
    spec: RoutePlan, route: Route, gw: Gateway, secret: bytes, rng: random.Random
) -> tuple[BackendSelector, PassiveHealth | None, Sticky | None]:
    """One backend and no active check: ``OnlyBackend``, nothing more on the request's
    path. Otherwise the route balances, with passive health (and a cookie if sticky)."""
    balance = spec.balance
    if len(route.backends) == 1 and balance.health.path is None:
        return OnlyBackend(route.backend), None, None
    check = _check(balance.health)
    members = [Member(backend, plan.weight,
                      gw.pool.check_state(backend, check) if check is not None else None)
               for backend, plan in zip(route.backends, spec.backends, strict=True)]
    policy = make_policy(balance.policy, balance.key, secret, rng)
    selector = Balanced(members, policy, gw, balance.retries, balance.try_duration,
                        balance.health.interval)
    sticky = policy if isinstance(policy, Sticky) else None
    passive = balance.passive
    health = PassiveHealth(passive.max_fails, passive.fail_duration, passive.unhealthy_status,
                           passive.unhealthy_latency)
    return selector, health, sticky


def _check(plan: HealthCheckPlan) -> Check | None:
    if plan.path is None:
        return None
    return Check(plan.path, plan.interval, plan.timeout, plan.expect_status, plan.expect_body,
                 plan.passes, plan.fails, tuple(sorted(plan.headers.items())))


def checked(policies: Policies) -> list[tuple[Backend, CheckState]]:
    """Every (backend, check verdict) the gateway's routes use: what the main process
    probes (upstream/probes.py's ``Prober.follow``)."""
    found = []
    for route in policies.routes:
        selector = route.select_backend
        if isinstance(selector, Balanced):
            found += [(m.backend, m.check) for m in selector.members if m.check is not None]
    return found


def _ops(rules: HeaderRulesPlan | None, own: dict[bytes, bytes] | None = None) -> HeaderOps:
    if rules is None:
        return HeaderOps(own=own)
    return HeaderOps(rules.set, rules.add, rules.remove, own)
