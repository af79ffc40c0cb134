"""The request_filter of a ``redirect`` route: every request is answered with a
redirect (config/local_routes.py), nothing is forwarded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from portico.http.events import Request
from portico.proxy.downstream import Downstream
from portico.proxy.phases import Answer, RequestFilter

if TYPE_CHECKING:
    from portico.config.local_plan import RedirectPlan


class RedirectRoute(RequestFilter):
    """``Location`` is the route's URL, then (if asked) the rest of the path after the
    route's prefix and the query. The target is the client's, already checked by the
    parser (no spaces or control characters), so it is copied as sent: still encoded."""

    __slots__ = ("_append_path", "_append_query", "_base", "_prefix", "_query", "_status")

    def __init__(self, plan: RedirectPlan, prefix: bytes) -> None:
        base, mark, query = plan.location.encode("ascii").partition(b"?")
        self._base = base.rstrip(b"/") if plan.append_path else base
        self._query = mark + query  # the URL's own query, before the request's
        self._status = plan.status
        self._append_path = plan.append_path
        self._append_query = plan.append_query
        self._prefix = prefix

    def answer(self, request: Request, client: Downstream) -> Answer | None:
        path, mark, query = request.target.partition(b"?")
        location = self._base
        if self._append_path:
            # routing matched the prefix on whole segments: the rest is "" or "/..."
            rest = path[len(self._prefix):] if path.startswith(self._prefix) else path
            location += rest
        location += self._query
        if self._append_query and mark and query:
            location += (b"&" if self._query else b"?") + query
        return Answer(self._status, [(b"Location", location or b"/")])

def redirect_filters(plan: RedirectPlan | None, prefix: bytes) -> tuple[RequestFilter, ...]:
    """The route's answer, last of its request filters; none (no cost) for other routes."""
    return () if plan is None else (RedirectRoute(plan, prefix),)
