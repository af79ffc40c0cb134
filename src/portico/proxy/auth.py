"""The request_filter of a route with ``basic_auth``: 401 and a challenge until the
client sends a user and password that match."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portico.http.events import Request
from portico.policy.basic_auth import BasicAuth, challenge
from portico.proxy.downstream import Downstream
from portico.proxy.phases import Answer, RequestFilter

if TYPE_CHECKING:
    from portico.config.access_plans import BasicAuthPlan


class BasicAuthGate(RequestFilter):
    __slots__ = ("_auth", "_challenge")

    def __init__(self, auth: BasicAuth, realm: str) -> None:
        self._auth = auth
        self._challenge = challenge(realm)

    def answer(self, request: Request, client: Downstream) -> Answer | None:
        authorization = request.get(b"authorization")
        if authorization and self._auth.permits(authorization):
            return None
        return Answer(401, [(b"WWW-Authenticate", self._challenge)])


def auth_filters(plan: BasicAuthPlan | None) -> tuple[RequestFilter, ...]:
    """The route's basic-auth gate; none (no cost) without ``basic_auth``."""
    if plan is None:
        return ()
    return (BasicAuthGate(BasicAuth(plan.users), plan.realm),)
