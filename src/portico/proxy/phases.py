"""The named phases a request passes through (pingora's), compiled once per gateway.

Order, for a request that is routed and forwarded::

    request_filter (server's, before routing; then the route's)  → may answer it
    select_backend                                               → the upstream
    upstream_request_filter                                      → the upstream's fields
    response_filter                                              → the client's fields
    on_error                                                     → may restate an error
    log                                                          → sinks, at the end

Each phase is a tuple of filter objects (native classes: a vtable call each once
compiled), built once from the plan by ``compile_policies``. A phase with nothing
in it costs one truth test. Filters are pure: headers and facts in, headers out;
none writes to a socket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from portico.errors import Layer, ProxyError
from portico.http.events import Headers, Request, Response
from portico.http.headers import FRAMING, HOP_BY_HOP, connection_named
from portico.policy.context import RequestFacts
from portico.policy.forwarded import VIA, Forwarding
from portico.policy.header_ops import HeaderOps
from portico.policy.redirect import https_redirect
from portico.proxy.downstream import Downstream
from portico.routing.proxypass import LOCATION_HEADERS, ReverseMap
from portico.upstream.backend import Backend
from portico.upstream.balancer import Member, Policy
from portico.upstream.health import all_down, available

if TYPE_CHECKING:
    from portico.proxy.gateway import Gateway

HSTS: Final = b"strict-transport-security"


class Answer:
    """A bodiless answer a request filter makes instead of forwarding (a redirect)."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = headers


# -- request_filter -----------------------------------------------------------------------
class RequestFilter:
    def answer(self, request: Request, client: Downstream) -> Answer | None:
        """An answer to send instead of forwarding, or None to go on."""
        return None


class RedirectToHttps(RequestFilter):
    """``redirect_to_https``: a plain-HTTP request gets a 308 to the same URL on https."""

    __slots__ = ("gw",)

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw  # its https_port is known only once the listener is bound

    def answer(self, request: Request, client: Downstream) -> Answer | None:
        if client.scheme != b"http":
            return None
        host = request.host or client.local_authority
        return Answer(308, https_redirect(host, request.target, self.gw.https_port))


# -- select_backend -----------------------------------------------------------------------
class BackendSelector:
    def select(self, request: Request, facts: RequestFacts) -> Backend | None:
        """The backend for ``request``; None: none is available (``unavailable`` says)."""
        raise NotImplementedError

    def retry(
        self, request: Request, facts: RequestFacts, tried: list[Backend], elapsed: float
    ) -> Backend | None:
        """Another backend to try after ``tried`` failed, within the route's bounds."""
        return None

    def unavailable(self) -> ProxyError:
        return ProxyError(503, Layer.UPSTREAM, "no backend is available")


class OnlyBackend(BackendSelector):
    """A route with one upstream."""

    __slots__ = ("backend",)

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def select(self, request: Request, facts: RequestFacts) -> Backend | None:
        return self.backend


class Balanced(BackendSelector):
    """A route with several backends (or health checks): the policy picks among those
    available now (upstream/balancer.py); when none is, a backend whose app is
    (re)starting is waited for, else 503 with Retry-After."""

    __slots__ = ("backends", "gw", "interval", "members", "policy", "retries", "try_duration")

    def __init__(
        self, members: list[Member], policy: Policy, gw: Gateway, retries: int,
        try_duration: float, interval: float,
    ) -> None:
        self.members = members
        self.backends = tuple(member.backend for member in members)
        self.policy = policy
        self.gw = gw  # its clock
        self.retries = retries
        self.try_duration = try_duration
        self.interval = interval  # the active check's, for Retry-After

    def select(self, request: Request, facts: RequestFacts) -> Backend | None:
        now = self.gw.now
        members = [member for member in self.members if available(member, now)]
        if members:
            return self.policy.pick(members, request, facts).backend
        for member in self.members:  # an app restarting: its gate is waited for
            gate = member.backend.gate
            if gate is not None and not gate.gone and (member.check is None or member.check.up):
                return member.backend
        return None

    def retry(
        self, request: Request, facts: RequestFacts, tried: list[Backend], elapsed: float
    ) -> Backend | None:
        if len(tried) > self.retries or (self.try_duration and elapsed >= self.try_duration):
            return None
        now = self.gw.now
        members = [member for member in self.members
                   if member.backend not in tried and available(member, now)]
        return self.policy.pick(members, request, facts).backend if members else None

    def unavailable(self) -> ProxyError:
        return all_down(self.members, self.gw.now, self.interval)


# -- upstream_request_filter --------------------------------------------------------------
class UpstreamRequestFilter:
    def apply(
        self, headers: Headers, request: Request, facts: RequestFacts, trusted: bool,
        backend: Backend,
    ) -> Headers:
        return headers


class ForwardedFields(UpstreamRequestFilter):
    """Host, X-Forwarded-*, Forwarded and Via (``policy/forwarded.py``). Always first:
    it reads the request's own fields (and their lower-case names)."""

    __slots__ = ("forwarding", "preserve_host")

    def __init__(self, forwarding: Forwarding, preserve_host: bool) -> None:
        self.forwarding = forwarding
        self.preserve_host = preserve_host

    def apply(
        self, headers: Headers, request: Request, facts: RequestFacts, trusted: bool,
        backend: Backend,
    ) -> Headers:
        host = request.host if self.preserve_host and request.host else backend.authority
        return self.forwarding.upstream_headers(
            request.headers, request.lnames, facts, trusted, host
        )


class RequestHeaderRules(UpstreamRequestFilter):
    """The route's ``request_headers`` rules."""

    __slots__ = ("ops",)

    def __init__(self, ops: HeaderOps) -> None:
        self.ops = ops

    def apply(
        self, headers: Headers, request: Request, facts: RequestFacts, trusted: bool,
        backend: Backend,
    ) -> Headers:
        return self.ops.apply(headers, facts)


# -- response_filter ----------------------------------------------------------------------
class ResponseFilter:
    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        return headers


# What a response field needs, by lower-case name; absent: passed on as it is.
_DROP: Final = 1  # hop-by-hop or framing: written afresh for the client
_LOCATION: Final = 2  # ProxyPassReverse
_COOKIE: Final = 3  # ProxyPassReverseCookiePath / Domain
_RESPONSE_FIELD_KIND: Final[dict[bytes, int]] = {
    **{name: _LOCATION for name in LOCATION_HEADERS},
    b"set-cookie": _COOKIE,
    **{name: _DROP for name in HOP_BY_HOP | FRAMING},
}


class ReverseFields(ResponseFilter):
    """The upstream's fields as the client gets them: hop-by-hop and framing dropped,
    Location and Set-Cookie mapped back (``ReverseMap``), Via added. Always first: it
    reads the response's own fields (and their lower-case names)."""

    __slots__ = ("reverse",)

    def __init__(self, reverse: ReverseMap) -> None:
        self.reverse = reverse

    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        headers = response.headers
        lnames = response.lnames
        named = connection_named(headers, lnames) if b"connection" in lnames else None
        reverse = self.reverse
        public_origin = facts.scheme + b"://" + facts.host
        kinds = _RESPONSE_FIELD_KIND
        out: Headers = []
        for i, field in enumerate(headers):  # not zip: mypyc compiles this natively
            lname = lnames[i]
            kind = kinds.get(lname, 0)
            if kind == 0:
                if named is None or lname not in named:
                    out.append(field)  # the parsed tuple itself: no new one per field
            elif kind == _LOCATION:
                out.append((field[0], reverse.location(field[1], public_origin)))
            elif kind == _COOKIE:
                out.append((field[0], reverse.set_cookie(field[1])))
        out.append((b"Via", VIA))
        return out


class ResponseHeaderRules(ResponseFilter):
    """The route's ``response_headers`` rules."""

    __slots__ = ("ops",)

    def __init__(self, ops: HeaderOps) -> None:
        self.ops = ops

    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        return self.ops.apply(headers, facts)


class EchoRequestId(ResponseFilter):
    """The request's id goes back to the client, unless the upstream set its own."""

    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        if b"x-request-id" not in response.lnames:
            headers.append((b"X-Request-ID", facts.request_id))
        return headers


class Hsts(ResponseFilter):
    """``hsts``: Strict-Transport-Security on https responses that lack one."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def apply(self, headers: Headers, response: Response, facts: RequestFacts) -> Headers:
        if facts.scheme == b"https" and HSTS not in response.lnames:
            headers.append((b"Strict-Transport-Security", self.value))
        return headers


# -- on_error -----------------------------------------------------------------------------
class ErrorFilter:
    def restate(self, error: ProxyError, request: Request, facts: RequestFacts) -> ProxyError:
        """The error to answer with instead (a custom page, a different status)."""
        return error
