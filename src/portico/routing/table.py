"""The route table: compiled once at load, matched per request.

Hosts are tried most specific first (exact, then ``*.suffix``, then routes
with no host); within a tier the longest whole-segment prefix wins. The
backend is chosen from nothing but the Host header and the path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from portico.errors import Layer, ProxyError
from portico.routing.path import (
    bad_path,
    canonical_path,
    climbs_above_root,
    decode_path,
    join_upstream,
    merge_slashes,
    needs_decoding,
    raw_index,
    remove_dot_segments,
    under_prefix,
)
from portico.upstream.backend import Backend

CACHE_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class Route:
    """One ``[[route]]``, compiled. ``prefix`` is b"" for a route at ``/``."""

    index: int
    prefix: bytes
    host: str | None
    backend: Backend  # the first of ``backends`` (what ProxyPassReverse maps back)
    backends: tuple[Backend, ...] = ()  # all of them, in config order; () means (backend,)
    base_path: bytes = b"/"  # joined in front of what the route passes on
    preserve_path: bool = False
    preserve_host: bool = False
    forward_raw_path: bool = False  # forward dot-segments and repeated slashes as sent
    label: str = field(default="", compare=False)  # "host/prefix", for logs
    log_label: bytes = field(default=b"", compare=False)  # the same, for the access log

    def __post_init__(self) -> None:
        if not self.backends:
            object.__setattr__(self, "backends", (self.backend,))
        if not self.label:
            text = (self.host or "") + (self.prefix.decode("latin-1") or "/")
            object.__setattr__(self, "label", text)
        object.__setattr__(self, "log_label", self.label.encode("latin-1"))


class RouteMatch:
    """A routed request; a plain class, as one is made per request."""

    __slots__ = ("route", "stripped", "target")

    def __init__(self, route: Route, target: bytes, stripped: bool) -> None:
        self.route = route
        self.target = target  # what the upstream receives: path and query
        self.stripped = stripped  # True when the prefix was removed (X-Forwarded-Prefix applies)


class RouteTable:
    def __init__(self, routes: Sequence[Route], unrouted: Sequence[Route] = ()) -> None:
        """``unrouted``: routes no path selects (a rewrite rule's proxy target), listed
        after the others in ``routes`` so that their backends are kept."""
        self.routes = tuple(routes) + tuple(unrouted)
        exact: dict[str, list[Route]] = {}
        wildcard: list[tuple[str, list[Route]]] = []
        anyhost: list[Route] = []
        for route in routes:
            if route.host is None:
                anyhost.append(route)
            elif route.host.startswith("*."):
                suffix = route.host[1:]
                for known, bucket in wildcard:
                    if known == suffix:
                        bucket.append(route)
                        break
                else:
                    wildcard.append((suffix, [route]))
            else:
                exact.setdefault(route.host, []).append(route)

        def longest_first(bucket: list[Route]) -> list[Route]:
            return sorted(bucket, key=lambda r: len(r.prefix), reverse=True)

        self._exact = {host: longest_first(b) for host, b in exact.items()}
        self._wildcard = sorted(
            ((suffix, longest_first(b)) for suffix, b in wildcard),
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self._anyhost = longest_first(anyhost)
        self._hostless = not exact and not wildcard
        self._cache: dict[tuple[bytes, bytes], tuple[Route, bytes, bool]] = {}

    def match(self, host: str, path: bytes) -> Route | None:
        """The route for a host (without port) and a canonical path, or None."""
        if self._hostless:
            for route in self._anyhost:
                if under_prefix(path, route.prefix):
                    return route
            return None
        tiers: list[list[Route]] = []
        bucket = self._exact.get(host)
        if bucket:
            tiers.append(bucket)
        for suffix, routes in self._wildcard:
            if host.endswith(suffix) and len(host) > len(suffix):
                tiers.append(routes)
        tiers.append(self._anyhost)
        for routes in tiers:
            for route in routes:
                if under_prefix(path, route.prefix):
                    return route
        return None

    def resolve(self, host: bytes, target: bytes) -> RouteMatch:
        """Route a request and build its upstream target; ProxyError if it can't be.

        Results are kept per (host, path) in a small cache that is emptied when
        full, so hot paths skip the work and random paths cannot grow memory.
        """
        mark = target.find(b"?")
        raw_path, query = (target, b"") if mark < 0 else (target[:mark], target[mark:])
        key = (b"" if self._hostless else host, raw_path)
        hit = self._cache.get(key)
        if hit is not None:
            route, path, stripped = hit
            return RouteMatch(route, path + query if query else path, stripped)
        match = self._resolve(host, raw_path)
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = (match.route, match.target, match.stripped)
        if query:
            match.target += query
        return match

    def _resolve(self, host: bytes, raw_path: bytes) -> RouteMatch:
        """The match for a path without its query (``resolve`` adds it after the cache)."""
        hostname = "" if self._hostless else host_without_port(host)
        if not needs_decoding(raw_path):
            route = self.match(hostname, raw_path)
            if route is None:
                raise ProxyError(404, Layer.PROXY, "no route matches this host and path")
            rest = raw_path[len(route.prefix) :]
        else:
            decoded = merge_slashes(decode_path(raw_path))
            route = self.match(hostname, remove_dot_segments(decoded))
            if route is not self.match(hostname, decoded):
                raise bad_path("path uses dot-segments to leave its route")
            if route is None:
                raise ProxyError(404, Layer.PROXY, "no route matches this host and path")
            if climbs_above_root(decoded[len(route.prefix) :]):
                raise bad_path("path uses dot-segments to leave its route")
            if not route.forward_raw_path:
                raw_path = canonical_path(raw_path)
            rest = raw_path[raw_index(raw_path, len(route.prefix), merged=True) :]
        if route.preserve_path:
            return RouteMatch(route, join_upstream(route.base_path, raw_path), False)
        return RouteMatch(route, join_upstream(route.base_path, rest), bool(route.prefix))


def host_without_port(host: bytes) -> str:
    text = host.decode("latin-1")
    if text.startswith("["):
        return text[: text.find("]") + 1]
    colon = text.rfind(":")
    return text[:colon] if colon >= 0 else text
