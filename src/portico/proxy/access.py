"""The request_filter of a route with ``access`` lists: 403 before anything is forwarded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portico.http.events import Request
from portico.policy.access import AddressRules, client_address
from portico.policy.forwarded import Trust
from portico.proxy.downstream import Downstream
from portico.proxy.phases import Answer, RequestFilter

if TYPE_CHECKING:
    from portico.config.access_plans import AccessPlan

_XFF = b"x-forwarded-for"


class ClientAccess(RequestFilter):
    """Refuses (403) a client whose trusted address the route's lists do not permit."""

    __slots__ = ("_rules", "_trust")

    def __init__(self, rules: AddressRules, trust: Trust) -> None:
        self._rules = rules
        self._trust = trust

    def answer(self, request: Request, client: Downstream) -> Answer | None:
        peer = client.remote_addr.decode("latin-1")
        forwarded = [value for lname, (_, value) in zip(request.lnames, request.headers,
                                                        strict=True) if lname == _XFF]
        if self._rules.permits(client_address(peer, forwarded, self._trust)):
            return None
        return Answer(403, [])


def access_filters(plan: AccessPlan | None, trust: Trust) -> tuple[RequestFilter, ...]:
    """The route's request_filter for its lists; none (no cost) without them."""
    if plan is None:
        return ()
    return (ClientAccess(AddressRules(plan.allow, plan.deny), trust),)
