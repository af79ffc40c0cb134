"""Before an exchange: route the request, and make the answers that come before routing.

``open_exchange`` is what a client protocol calls for each request head. A
redirect to https, a 404 from routing and a 413 by Content-Length are answered
here, through the ``Downstream``, and logged; every other request becomes an
``Exchange`` that is routed already (its route, policy and facts are set).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from portico.errors import ProxyError
from portico.http.events import Body, Request
from portico.policy.context import RequestFacts, client_request_id, public_port
from portico.policy.redirect import https_redirect
from portico.proxy.downstream import Downstream
from portico.proxy.exchange import Exchange
from portico.proxy.route_policy import RoutePolicy

if TYPE_CHECKING:
    from portico.proxy.gateway import Gateway
    from portico.routing.table import Route


def open_exchange(client: Downstream, request: Request, gw: Gateway) -> Exchange | None:
    """The routed exchange for ``request``, not started; None when it was answered here."""
    started = gw.loop.time()
    if gw.redirect_to_https and client.scheme == b"http":
        host = request.host or client.local_authority
        rid = client_request_id(request) or gw.request_id()
        client.send_answer(308, https_redirect(host, request.target, gw.https_port, rid))
        _answered(client, request, gw, 308, 0, rid, None, started)
        return None
    try:
        match = gw.routes.resolve(request.host, request.target)
    except ProxyError as exc:
        _refuse(client, request, gw, exc, None, started)
        return None
    route = match.route
    policy = cast(RoutePolicy, route.policy)
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
    return Exchange(client, request, gw, match, policy, facts, started)


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
) -> None:
    """Log an answer made before an exchange, then let the client go on."""
    log = gw.access_log
    if log.enabled:
        log.record(
            client.remote_addr, request.method, request.target, request.version, status, sent,
            request.get(b"referer"), request.get(b"user-agent"), rid,
            route.log_label if route else b"", route.upstream.authority if route else b"",
            gw.loop.time() - started,
        )
    client.finished(True)
