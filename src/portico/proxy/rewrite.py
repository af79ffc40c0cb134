"""Rewrite rules in the request_filter phase: what a request becomes before it is routed.

``Rewriting`` is built once per gateway from the plan (``build_rewriting``): the
server's rules, each route's, the maps, the outbound rules, and one extra route
per origin a rule proxies to (its backend taken from the pool, so it is pooled,
kept across reloads and closed like any other). ``decide`` is the whole inbound
decision, pure and shared by the proxy (``proxy/dispatch.py``) and ``portico
try``: the canonical path through the server's rules, routing, the route's rules,
and the outcome (a route match, an answer, an abort, or an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from portico.errors import Layer, ProxyError
from portico.http.events import Headers, Request, Response
from portico.policy.context import RequestFacts
from portico.proxy.downstream import Downstream
from portico.proxy.phases import ResponseFilter, UpstreamRequestFilter
from portico.routing.outbound import OutboundRules
from portico.routing.path import canonical_path
from portico.routing.rules import (
    ABORT,
    CONTINUE,
    PROXY,
    REDIRECT,
    REFUSE,
    RuleSet,
    RuleState,
    lookup_of,
)
from portico.routing.table import Route, RouteMatch, RouteTable
from portico.routing.templates import Lookup
from portico.routing.variables import RequestVariables
from portico.upstream.backend import Backend

if TYPE_CHECKING:
    from portico.config.plan import RoutePlan, ServingPlan
    from portico.upstream.pool import UpstreamPool

# Decision kinds.
ROUTED: Final = 0
ANSWER: Final = 1  # a redirect or a custom response: status, headers, body
ABORTED: Final = 2
FAILED: Final = 3  # a ProxyError: 403 for an unsafe rewrite, 404 from routing, 500 loop
UNTOUCHED_SIZE: Final = 4096
# Byte needles are ints: ``b"?" in target`` goes through the buffer protocol, ~2,000
# instructions a test compiled, an int ~50 (policy/forwarded.py's _UNDERSCORE).
_QUESTION: Final = ord("?")


class Decision:
    __slots__ = ("body", "error", "headers", "kind", "match", "reason", "state", "status")

    def __init__(self, kind: int, state: RuleState) -> None:
        self.kind = kind
        self.state = state
        self.match: RouteMatch | None = None
        self.error: ProxyError | None = None
        self.status = 0
        self.reason = b""
        self.body = b""
        self.headers: Headers = []


def origin_of(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class Rewriting:
    """The gateway's compiled rules; ``routes[i]`` is route i's rules (None: none)."""

    def __init__(
        self,
        server: RuleSet | None,
        routes: list[RuleSet | None],
        maps: Lookup,
        proxy_routes: dict[tuple[str, str, int], Route],
        document_root: Path | None = None,
    ) -> None:
        self.document_root = document_root
        # (Host, raw path) of requests no rule list can match: the gate's answers, kept
        # like the route table's cache (emptied when full), so a hot path skips it.
        self.untouched: set[tuple[bytes, bytes]] = set()
        every = [*(server.rules if server else []),
                 *(rule for rules in routes if rules for rule in rules.rules)]
        self.sets_response_fields = any(rule.response_headers for rule in every)
        self.sets_request_fields = any(rule.request_headers for rule in every)
        self.server = server
        self.routes = routes
        self.maps = maps
        self.proxy_routes = proxy_routes


def build_rewriting(
    plan: ServingPlan, pool: UpstreamPool, first_index: int
) -> tuple[Rewriting | None, list[Route]]:
    """The rules and the extra routes (indices from ``first_index``) of their proxy
    targets; (None, []) when the config has no rules."""
    rewrite = plan.rewrite
    if not rewrite.rules and not any(route.rewrite.rules for route in plan.routes):
        return None, []
    maps = lookup_of(rewrite.maps)
    root = Path(rewrite.document_root) if rewrite.document_root else None
    server = RuleSet(rewrite.rules, maps, rewrite.max_rounds, "", root) if rewrite.rules else None
    route_rules: list[RuleSet | None] = []
    for route in plan.routes:
        prefix = "" if route.path == "/" else route.path
        rules = route.rewrite.rules
        route_rules.append(RuleSet(rules, maps, rewrite.max_rounds, prefix, root)
                           if rules else None)
    proxy_routes: dict[tuple[str, str, int], Route] = {}
    extra: list[Route] = []
    for rule in [*rewrite.rules, *(r for route in plan.routes for r in route.rewrite.rules)]:
        if rule.url is None or not rule.url.lower().startswith(("http://", "https://")):
            continue
        origin = origin_of(rule.url)
        if origin in proxy_routes:
            continue
        scheme, host, port = origin
        made = Backend(scheme, host, port)
        if scheme == "https":  # verified against the system's CAs
            from portico.tls.contexts import upstream_context

            made = Backend(scheme, host, port, upstream_context(True, None), "verify=True;ca=None")
        target = Route(index=first_index + len(extra), prefix=b"", host=None,
                       backend=pool.backend(made), label=f"rule:{host}:{port}")
        proxy_routes[origin] = target
        extra.append(target)
    return Rewriting(server, route_rules, maps, proxy_routes, root), extra


def decide(
    rewriting: Rewriting, request: Request, client: Downstream, routes: RouteTable,
    trace: bool = False,
) -> Decision | RouteMatch:
    """Rules, routing and the route's rules for ``request``; see the module's docstring.

    A plain RouteMatch when no rule can match the path (``RuleSet.may_match``): the
    common case costs the routing it always had, a canonical path and a
    ``bytes.startswith`` per rule list. Variables are made only for a list that runs."""
    target_bytes = request.target
    mark = target_bytes.find(b"?") if _QUESTION in target_bytes else -1
    raw = target_bytes if mark < 0 else target_bytes[:mark]
    untouched = rewriting.untouched
    key = (request.host, raw)
    if not trace and key in untouched:  # no rule list could match it last time either
        return routes.resolve(request.host, target_bytes)
    # Only dot-segments and repeated slashes make the canonical path differ from raw.
    dotted = b"/." in raw or b"//" in raw or b"/%" in raw
    canonical = canonical_path(raw) if dotted else raw
    server = rewriting.server
    if not trace and (server is None or not server.may_match(canonical)):
        try:
            match = routes.resolve(request.host, target_bytes)
        except ProxyError:
            pass  # decided below, where the error gets its decision
        else:
            index = match.route.index
            rules = rewriting.routes[index] if index < len(rewriting.routes) else None
            if rules is None or not rules.may_match(canonical):
                if len(untouched) >= UNTOUCHED_SIZE:
                    untouched.clear()
                untouched.add(key)
                return match
    target = target_bytes.decode("latin-1")
    query = "" if mark < 0 else target[mark + 1:]
    path = canonical.decode("latin-1")
    state = RuleState(path, query, trace)
    variables: RequestVariables | None = None
    maps = rewriting.maps
    server = rewriting.server
    if server is not None and server.may_match(canonical):
        variables = _variables(rewriting, request, client, target, path, query)
        server.run(state, variables, maps)
        if state.action != CONTINUE:
            return _ended(state, rewriting)
    try:
        unchanged = state.path is path and state.query is query
        match = routes.resolve(
            request.host, request.target if unchanged else state.target.encode("latin-1"))
        index = match.route.index
        rules = rewriting.routes[index] if index < len(rewriting.routes) else None
        if rules is not None and rules.may_match(state.path.encode("latin-1")):
            before = state.target
            if variables is None:
                variables = _variables(rewriting, request, client, target, path, query)
            rules.run(state, variables, maps)
            if state.action != CONTINUE:
                return _ended(state, rewriting)
            if state.target != before:
                match = routes.resolve(request.host, state.target.encode("latin-1"))
    except ProxyError as exc:
        decision = Decision(FAILED, state)
        decision.error = exc
        return decision
    decision = Decision(ROUTED, state)
    decision.match = match
    return decision


def _variables(
    rewriting: Rewriting, request: Request, client: Downstream, target: str, path: str,
    query: str,
) -> RequestVariables:
    host = (request.host or client.local_authority).decode("latin-1")
    return RequestVariables(
        request.method.decode("latin-1"), target, path, query, request.headers, host,
        client.scheme.decode("latin-1"), request.version.decode("latin-1"),
        client.remote_addr.decode("latin-1"), client.remote_port.decode("latin-1"),
        rewriting.document_root)


def _ended(state: RuleState, rewriting: Rewriting) -> Decision:
    action = state.action
    if action == PROXY:
        origin = origin_of(state.upstream_url)
        route = rewriting.proxy_routes.get(origin)
        if route is None:  # config/rules_compile.py refuses it at load: never here
            return _failed(state, ProxyError(403, Layer.PROXY, "proxy target not allowed"))
        parts = urlsplit(state.upstream_url)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        decision = Decision(ROUTED, state)
        decision.match = RouteMatch(route, target.encode("latin-1"), False)
        return decision
    if action == ABORT:
        return Decision(ABORTED, state)
    if action == REFUSE:
        status = state.status
        layer = Layer.CLIENT if status < 500 else Layer.PROXY
        return _failed(state, ProxyError(status, layer, state.reason))
    decision = Decision(ANSWER, state)
    decision.status = state.status
    decision.headers = response_fields(state)
    if action == REDIRECT:
        decision.headers.insert(0, (b"Location", state.location.encode("latin-1")))
    else:
        decision.reason = state.reason.encode("latin-1")
        decision.body = state.body.encode("utf-8")
        if decision.body:
            decision.headers.append((b"Content-Type", b"text/plain; charset=utf-8"))
    return decision


def _failed(state: RuleState, error: ProxyError) -> Decision:
    decision = Decision(FAILED, state)
    decision.error = error
    return decision


def response_fields(state: RuleState) -> Headers:
    return [(n.encode("latin-1"), v.encode("latin-1", "replace"))
            for n, v in state.response_headers]


def request_fields(state: RuleState) -> Headers:
    return [(n.encode("latin-1"), v.encode("latin-1", "replace"))
            for n, v in state.request_headers]


def _replace_fields(headers: Headers, added: Headers) -> Headers:
    names = {name.lower() for name, _ in added}
    return [field for field in headers if field[0].lower() not in names] + added


class RuleRequestFields(UpstreamRequestFilter):
    """The request headers the request's rules set, replacing any of the same name.
    After ForwardedFields, so a rule's X-Original-Host passes (a client's never does)."""

    def apply(
        self, headers: Headers, request: Request, facts: RequestFacts, trusted: bool,
        backend: Backend,
    ) -> Headers:
        fields = facts.rule_fields
        return _replace_fields(headers, fields[0]) if fields and fields[0] else headers


def custom_response(status: int, reason: bytes, length: int) -> Response:
    from portico.http.events import Body

    return Response(status, reason, b"1.1", [], Body.LENGTH, length, True)


class RuleResponseFields(ResponseFilter):
    """The response headers the request's rules set (``RequestFacts.rule_fields``)."""

    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        fields = facts.rule_fields
        return _replace_fields(headers, fields[1]) if fields and fields[1] else headers


class OutboundFilter(ResponseFilter):
    """Outbound rules: response header values rewritten (IIS outbound, Location fixes)."""

    __slots__ = ("rules",)

    def __init__(self, rules: OutboundRules) -> None:
        self.rules = rules

    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        return self.rules.apply(headers, response.status)


def rule_response_filters(
    plan: ServingPlan, route: RoutePlan | None, rewriting: Rewriting | None
) -> list[ResponseFilter]:
    """The response filters rules add to a route (``route`` None: a proxy target's):
    the fields rules set, then the server's and the route's outbound rules."""
    if rewriting is None and not plan.rewrite.outbound and not (
            route and route.rewrite.outbound):
        return []
    filters: list[ResponseFilter] = []
    if rewriting is not None and rewriting.sets_response_fields:
        filters.append(RuleResponseFields())
    outbound = [*plan.rewrite.outbound, *(route.rewrite.outbound if route else [])]
    if outbound:
        filters.append(OutboundFilter(OutboundRules(outbound, lookup_of(plan.rewrite.maps))))
    return filters
