"""The configuration file, as a typed schema. Field docs are the reference.

Every table forbids unknown keys, so a typo is an error that names its path.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from portico.config.access import Access
from portico.config.admin import Admin
from portico.config.app_schema import App
from portico.config.auth import BasicAuth
from portico.config.balancing import BalancingKeys, check_balancing
from portico.config.http2 import Http2
from portico.config.listen import parse_listen
from portico.config.local_routes import LocalRouteKeys, answered_locally
from portico.config.metrics import Metrics
from portico.config.rules import Rewrite, RouteRewrite
from portico.config.table import Table
from portico.config.tunnels import Protocols
from portico.config.units import Duration, Size
from portico.policy.header_ops import Template, check_name
from portico.settings import ClientTimeouts, HeadLimits, PoolSettings, RouteLimits

# The runtime types' defaults are the schema's: each is written once (portico/settings.py).
_HEAD, _CLIENT, _ROUTE, _POOL = HeadLimits(), ClientTimeouts(), RouteLimits(), PoolSettings()


class Limits(Table):
    """``[server.limits]``: limits on every client connection and request; the body and
    upstream ones are defaults that a route's ``limits`` may override."""

    max_request_line: Size = _HEAD.max_request_line
    """Longest request line; beyond it the reply is 414."""
    max_header_size: Size = _HEAD.max_header_size
    """Longest single header field (name and value); beyond it 431."""
    max_head_size: Size = _HEAD.max_head_size
    """All header fields together; beyond it 431."""
    max_headers: int = Field(_HEAD.max_headers, ge=1)
    """Most header fields in one request; beyond it 431."""
    max_body_size: Size = _ROUTE.max_body_size
    """Largest request body; beyond it 413 (decided from Content-Length when given)."""
    head_timeout: Duration = _CLIENT.head_timeout
    """The whole request head must arrive within this, from its first byte (408)."""
    body_timeout: Duration = _ROUTE.body_timeout
    """Longest pause between pieces of a request body (408)."""
    keepalive_timeout: Duration = _CLIENT.keepalive_timeout
    """An idle keep-alive client connection is closed after this."""
    max_keepalive_requests: int = Field(_CLIENT.max_keepalive_requests, ge=1)
    """Requests served on one client connection before it is closed."""
    connect_timeout: Duration = _ROUTE.connect_timeout
    """Connecting to an upstream: refused is 502 at once, a timeout 504."""
    response_timeout: Duration = _ROUTE.response_timeout
    """Waiting for the upstream's response head, and between its body reads (504)."""
    send_timeout: Duration = _CLIENT.send_timeout
    """A client that takes nothing of a response for this long is disconnected."""
    max_connections: int | None = Field(_CLIENT.max_connections, ge=1)
    """Client connections open at once; beyond it new ones are closed at once.
    Default: half of RLIMIT_NOFILE (a proxied request holds two descriptors), less 16."""
    upgrades: Protocols = _ROUTE.upgrades
    """Upgrade protocols tunnelled to the upstream (``[]``: none; e.g. ``["websocket"]``)."""
    tunnel_idle_timeout: Duration = _ROUTE.tunnel_idle_timeout
    """A tunnel (WebSocket) with no byte either way for this long is closed."""
    tunnel_max_lifetime: Duration = _ROUTE.tunnel_max_lifetime
    """A tunnel open this long gets Close 1001 and is closed; 0: no cap."""
    tunnel_drain_delay: Duration = _CLIENT.tunnel_drain_delay
    """At a reload or stop, how long open tunnels stay up before both peers get Close 1001."""


class RouteLimitOverrides(Table):
    """``limits`` in a ``[[route]]``: overrides of the server defaults."""

    max_body_size: Size | None = None
    """This route's ``max_body_size``; left out, ``[server.limits]``'s."""
    body_timeout: Duration | None = None
    """This route's ``body_timeout``; left out, ``[server.limits]``'s."""
    connect_timeout: Duration | None = None
    """This route's ``connect_timeout``; left out, ``[server.limits]``'s."""
    response_timeout: Duration | None = None
    """This route's ``response_timeout``; left out, ``[server.limits]``'s."""
    upgrades: Protocols | None = None
    """This route's ``upgrades`` (``[]`` turns them off); left out, ``[server.limits]``'s."""
    tunnel_idle_timeout: Duration | None = None
    """This route's ``tunnel_idle_timeout``; left out, ``[server.limits]``'s."""
    tunnel_max_lifetime: Duration | None = None
    """This route's ``tunnel_max_lifetime``; left out, ``[server.limits]``'s."""


class Pool(Table):
    """``[server.pool]``: upstream keep-alive connections."""

    max_idle: int = Field(_POOL.max_idle, ge=0)
    """Idle connections kept per upstream."""
    idle_timeout: Duration = _POOL.idle_timeout
    """Close idle upstream connections after this; keep it below the backend's
    keep-alive (gunicorn's is 2 s) so the backend never closes one under us."""


class HeaderRules(Table):
    """``request_headers`` / ``response_headers`` of a route: header fields to set, add
    or remove.

    Values may use ``{scheme}``, ``{host}``, ``{remote_addr}``, ``{prefix}``, ``{request_id}``.
    """

    set: dict[str, str] = {}
    """Fields set to these values, replacing any of the same name."""
    add: dict[str, str | list[str]] = {}
    """Fields added (a list: one field per value), beside any of the same name."""
    remove: list[str] = []
    """Names of fields removed."""

    @field_validator("set", "add")
    @classmethod
    def _values(cls, rules: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for name, values in rules.items():
            problem = check_name(name)
            if problem:
                raise ValueError(f"{name!r} {problem}")
            for value in [values] if isinstance(values, str) else values:
                try:
                    Template(value)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        return rules

    @field_validator("remove")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            problem = check_name(name)
            if problem:
                raise ValueError(f"{name!r} {problem}")
        return names


_PATH = re.compile(r"/(?:[A-Za-z0-9._~!$&'()*+,=:@-]+(?:/[A-Za-z0-9._~!$&'()*+,=:@-]+)*)?\Z")
_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\Z")


class Route(BalancingKeys, LocalRouteKeys):
    """``[[route]]``: a public path prefix served by an upstream, several, or an app."""

    path: str
    """Prefix matched on whole segments: ``/myapp`` serves ``/myapp`` and ``/myapp/...``."""
    host: str | None = None
    """Only for this Host: exact (``my.site.com``) or wildcard (``*.site.com``)."""
    upstream: str | None = None
    """``http://host:port/base``; the prefix is replaced by the base path."""
    app: str | None = None
    """Name of an ``[[app]]`` to send requests to, instead of ``upstream``."""
    preserve_path: bool = False
    """Forward the full original path (IIS ``{R:0}``): the app mounts itself under the prefix."""
    preserve_host: bool = False
    """Send the client's Host upstream instead of the upstream's own."""
    forward_raw_path: bool = False
    """Forward the path as the client sent it: dot-segments and repeated slashes kept
    (by default they are removed, as Apache and nginx do, and routing is unchanged)."""
    request_headers: HeaderRules = HeaderRules()
    """Changes to the request's header fields on the way to the upstream."""
    response_headers: HeaderRules = HeaderRules()
    """Changes to the response's header fields on the way to the client."""
    limits: RouteLimitOverrides = RouteLimitOverrides()
    rewrite: RouteRewrite = RouteRewrite()
    """URL rewrite rules run once this route is chosen, and its outbound rules."""
    access: Access = Access()
    """IP allow and deny lists (config/access.py)."""
    basic_auth: BasicAuth | None = None
    """HTTP basic auth with argon2 hashes (config/auth.py)."""
    verify: bool = True
    """For an https upstream: check its certificate and name (``false`` warns at start)."""
    ca: str | None = None
    """For an https upstream: a PEM file of CAs to trust instead of the system's."""

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if path != "/" and path.endswith("/"):
            path = path.rstrip("/")
        segments = path.split("/")[1:]
        if not _PATH.match(path) or any(s in (".", "..") for s in segments):
            raise ValueError(
                f"invalid route path {path!r}: it must start with '/', and use plain "
                "segments (no '//', '.', '..', '%', '?', '#' or ';'), e.g. \"/myapp\""
            )
        return path

    @field_validator("host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        if host is None:
            return None
        host = host.lower()
        if not _HOSTNAME.match(host):
            raise ValueError(
                f"invalid host {host!r}: use a name like \"my.site.com\" or \"*.site.com\""
            )
        return host

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parse_upstream(url)
        return url

    @model_validator(mode="after")
    def _one_target(self) -> Route:
        if not answered_locally(self):  # config/local_routes.py: redirect routes
            check_balancing(self)  # config/balancing.py
        return self


def parse_upstream(url: str) -> tuple[str, str, int, str]:
    """``http://10.0.0.5:8000/base`` → (scheme, host, port, base path)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid upstream URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"invalid upstream URL {url!r}: use http://host:port/ or https://host:port/ "
            "(e.g. \"http://127.0.0.1:8000/\")"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"invalid upstream URL {url!r}: no query, fragment or user info")
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default, parts.path or "/"


class Server(Table):
    """``[server]``: the listeners, whom to trust for forwarded headers, logging and
    shutdown."""

    listen: list[str] = ["http://127.0.0.1:8080"]
    """Addresses to serve, ``http://HOST:PORT``; port 0 picks a free one."""
    trusted_proxies: list[str] = []
    """CIDRs allowed to send X-Forwarded-* / Forwarded; from others they are dropped."""
    forwarded: bool = False
    """Also send RFC 7239 ``Forwarded: for=...;proto=...;host=...``."""
    access_log: str = "-"
    """``-`` for stdout, a file path, or ``off``."""
    log_format: Literal["combined", "json"] = "combined"
    """Access log lines in Apache's combined format, or one JSON object each."""
    workers: int | Literal["auto"] = 1
    """Proxy processes sharing the listeners (SO_REUSEPORT); ``"auto"``: one per core."""
    drain_timeout: Duration = 30.0
    """On SIGTERM/SIGINT, how long in-flight requests may take to finish."""
    tick: Duration = 0.5
    """How often deadlines are checked; timeouts are exact to within this."""
    limits: Limits = Limits()
    pool: Pool = Pool()
    http2: Http2 = Http2()
    redirect_to_https: bool = False
    """Answer every plain-HTTP request with 308 to the same URL on the https listener."""
    compress: bool = False
    """Compress responses on every route that does not set its own ``compress``."""
    hsts: str | None = None
    """``Strict-Transport-Security`` value added to https responses, e.g. ``max-age=31536000``."""

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: object) -> object:
        if value == "auto" or (type(value) is int and 1 <= value <= 256):
            return value
        raise ValueError(
            f"invalid workers {value!r}: use a number of processes from 1 to 256, or "
            "\"auto\" for one per core"
        )

    @field_validator("hsts")
    @classmethod
    def _hsts(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(
            r"max-age=[0-9]+(\s*;\s*(includeSubDomains|preload))*", value.strip()
        ):
            raise ValueError(
                f"invalid hsts {value!r}: use \"max-age=SECONDS\", optionally with "
                "\"; includeSubDomains\" and \"; preload\""
            )
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, urls: list[str]) -> list[str]:
        if not urls:
            raise ValueError("at least one listen address is needed")
        for url in urls:
            parse_listen(url)
        return urls

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, cidrs: list[str]) -> list[str]:
        for cidr in cidrs:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(
                    f"invalid CIDR {cidr!r}: use an address or network like \"10.0.0.0/8\""
                ) from None
            if network.prefixlen == 0:
                raise ValueError(f"{cidr!r} trusts every address; name the proxies instead")
        return cidrs


class Certificate(Table):
    """``[[tls.certificate]]``: a certificate for some hosts (the first one is the default)."""

    hosts: list[str] = Field(min_length=1)
    """Names it serves, exact (``my.site.com``) or wildcard (``*.site.com``), chosen by SNI."""
    cert: str | None = None
    """PEM certificate chain, relative to the config file."""
    key: str | None = None
    """PEM private key."""
    self_signed: bool = False
    """Development: a leaf from portico's local CA, made and kept under the state dir."""

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        out = []
        for host in hosts:
            host = host.lower()
            try:
                ipaddress.ip_address(host)
            except ValueError:
                if not _HOSTNAME.match(host):
                    raise ValueError(
                        f"invalid host {host!r}: use a name like \"my.site.com\", "
                        "\"*.site.com\" or an IP address"
                    ) from None
            out.append(host)
        return out

    @model_validator(mode="after")
    def _source(self) -> Certificate:
        files = self.cert is not None and self.key is not None
        if files == self.self_signed or (self.cert is None) != (self.key is None):
            raise ValueError("a certificate needs 'cert' and 'key', or 'self_signed = true'")
        return self


class Tls(Table):
    """``[tls]``: the certificates of the https listeners."""

    certificate: list[Certificate] = []
    reload_interval: Duration = 60.0
    """How often certificate files are checked for changes (also on SIGHUP)."""


class Config(Table):
    server: Server = Server()
    route: list[Route] = []
    app: list[App] = []
    tls: Tls = Tls()
    metrics: Metrics = Metrics()
    admin: Admin = Admin()
    rewrite: Rewrite = Rewrite()

    @model_validator(mode="after")
    def _references(self) -> Config:
        names = [app.name for app in self.app]
        if len(set(names)) != len(names):
            raise ValueError("two [[app]] tables share a name")
        for route in self.route:
            if route.app is not None and route.app not in names:
                valid = ", ".join(names) or "none defined"
                raise ValueError(f"route {route.path!r} names app {route.app!r}; apps: {valid}")
        schemes = {parse_listen(url)[0] for url in self.server.listen}
        if "https" in schemes and not self.tls.certificate:
            raise ValueError(
                "an https:// listener needs a [[tls.certificate]] (cert and key, or "
                "self_signed = true)"
            )
        if self.server.redirect_to_https and not {"http", "https"} <= schemes:
            raise ValueError("redirect_to_https needs both an http:// and an https:// listener")
        if self.server.hsts and "https" not in schemes:
            raise ValueError("hsts needs an https:// listener")
        seen: set[tuple[str | None, str]] = set()
        for route in self.route:
            key = (route.host, route.path)
            if key in seen:
                raise ValueError(f"two routes for {route.host or ''}{route.path}")
            seen.add(key)
        return self
