"""Before an exchange: the request_filter phase, routing, and the answers made there.

``open_exchange`` is what a client protocol calls for each request head. The
server's request filters (a redirect to https) run before routing, the route's
after it; their answers, a 404 from routing and a 413 by Content-Length are sent
here, through the ``Downstream``, and logged. Every other request becomes an
``Exchange`` that is routed already (its route, policy and facts are set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portico.errors import ProxyError
from portico.http.events import Body, Request
from portico.policy.context import RequestFacts, client_request_id, public_port
from portico.proxy.downstream import Downstream
from portico.proxy.exchange import Exchange
from portico.proxy.phases import Answer, RequestFilter
from portico.proxy.rewrite import (
    ABORTED,
    FAILED,
    ROUTED,
    Decision,
    Rewriting,
    custom_response,
    decide,
    request_fields,
    response_fields,
)
from portico.proxy.static import FileAnswer
from portico.routing.rules import RuleState
from portico.routing.table import RouteMatch

if TYPE_CHECKING:
    from portico.proxy.gateway import Gateway
    from portico.routing.table import Route


def open_exchange(client: Downstream, request: Request, gw: Gateway) -> Exchange | None:
    """The routed exchange for ``request``, not started; None when it was answered here."""
    started = gw.loop.time()
    policies = gw.policies
    if policies.request_filter and _filtered(
        policies.request_filter, client, request, gw, None, started
    ):
        return None
    rules: RuleState | None = None
    if policies.rewrite is not None:
        decided = _rewritten(policies.rewrite, client, request, gw, started)
        if decided is None:
            return None
        match, rules = decided
    else:
        try:
            match = gw.routes.resolve(request.host, request.target)
        except ProxyError as exc:
            _refuse(client, request, gw, exc, None, started)
            return None
    route = match.route
    policy = policies.routes[route.index]
    if policy.request_filter and _filtered(
        policy.request_filter, client, request, gw, route, started
    ):
        return None
    limits = policy.limits
    if request.body is Body.LENGTH and request.content_length > limits.max_body_size:
        _refuse(client, request, gw, limits.body_too_large(), route, started)
        return None
    scheme = client.scheme
    host = request.host or client.local_authority
    facts = RequestFacts(
        scheme,
        host,
        public_port(host, scheme),
        client.remote_addr,
        route.prefix if match.stripped else b"",
        client_request_id(request) or gw.request_id(),
    )
    if rules is not None and (rules.request_headers or rules.response_headers):
        facts.rule_fields = (request_fields(rules), response_fields(rules))
    if policy.compress is not None:  # proxy/compress.py
        client = policy.compress.wrap(client, request)
    return Exchange(client, request, gw, match, policy, facts, started)


def _rewritten(
    rewriting: Rewriting, client: Downstream, request: Request, gw: Gateway, started: float
) -> tuple[RouteMatch, RuleState | None] | None:
    """Phase request_filter, the rewrite rules (proxy/rewrite.py): the route match and
    the response fields rules set; None when the request was answered here."""
    decision = decide(rewriting, request, client, gw.routes)
    if type(decision) is RouteMatch:  # no rule could match: the common case
        return decision, None
    assert isinstance(decision, Decision)
    state = decision.state
    if decision.kind == ROUTED:
        assert decision.match is not None
        return decision.match, state
    if decision.kind == ABORTED:
        _answered(client, request, gw, 0, 0, gw.request_id(), None, started, clean=False)
    elif decision.kind == FAILED:
        assert decision.error is not None
        _refuse(client, request, gw, decision.error, None, started)
    else:
        rid = client_request_id(request) or gw.request_id()
        headers = decision.headers
        headers.append((b"X-Request-ID", rid))
        if decision.body:
            client.start_response(
                custom_response(decision.status, decision.reason, len(decision.body)), headers)
            if request.method != b"HEAD":
                client.send_data(decision.body)
            client.end()
        else:
            client.send_answer(decision.status, headers)
        _answered(client, request, gw, decision.status, len(decision.body), rid, None, started)
    return None


def _filtered(
    steps: tuple[RequestFilter, ...],
    client: Downstream,
    request: Request,
    gw: Gateway,
    route: Route | None,
    started: float,
) -> bool:
    """Phase request_filter: True when one of ``steps`` answered the request."""
    answer: Answer | None = None
    for step in steps:
        answer = step.answer(request, client)
        if answer is not None:
            break
    if answer is None:
        return False
    rid = client_request_id(request) or gw.request_id()
    answer.headers.append((b"X-Request-ID", rid))
    if isinstance(answer, FileAnswer):  # proxy/static.py: a file, streamed
        status = answer.status
        answer.send(client, request, lambda sent, clean: _answered(
            client, request, gw, status, sent, rid, route, started, clean))
        return True
    client.send_answer(answer.status, answer.headers)
    _answered(client, request, gw, answer.status, 0, rid, route, started)
    return True


def _refuse(
    client: Downstream,
    request: Request,
    gw: Gateway,
    error: ProxyError,
    route: Route | None,
    started: float,
) -> None:
    rid = client_request_id(request) or gw.request_id()
    sent = client.send_error(error, rid)
    _answered(client, request, gw, error.status, sent, rid, route, started)


def _answered(
    client: Downstream,
    request: Request,
    gw: Gateway,
    status: int,
    sent: int,
    rid: bytes,
    route: Route | None,
    started: float,
    clean: bool = True,
) -> None:
    """Log an answer made before an exchange (the gateway's log sinks: the access log,
    metrics), then let the client go on (``clean`` False: close the connection, as an
    ``abort`` rule does)."""
    if gw.policies.log:
        gw.log_answer((
            client.remote_addr, request.method, request.target, request.version, status, sent,
            request.get(b"referer"), request.get(b"user-agent"), rid,
            route.log_label if route else b"", route.backend.authority if route else b"",
        ), route.index if route else -1, gw.loop.time() - started)
    client.finished(clean)
