"""Backends drained by the admin API: out of every balanced route's rotation until enabled.

A backend is identified by its address as ``GET /api/backends`` lists it, without
the scheme: ``host:port`` (``127.0.0.1:8001``). Draining marks the pool's
``Backend`` (``drained``, and ``down_until`` = infinity, so the request path reads
nothing it did not read already: ``upstream/health.py``'s ``available``); requests
already sent to it finish. The main process keeps the set of drained addresses,
applies it again to each reload's gateway (``Runtime.served``) and sends each change
to every worker as a ``BackendDrain`` message (the path active checks' verdicts
take; the answer waits until every worker has applied it); a worker (re)started
later gets the whole set after its plan.
"""

from __future__ import annotations

import math
from typing import Any

from portico.proxy.gateway import Gateway
from portico.proxy.phases import Balanced
from portico.server import channel
from portico.server.listeners import Listeners
from portico.server.reload import Runtime
from portico.server.workers import WorkerPool
from portico.upstream.backend import Backend, Key
from portico.upstream.pool import UpstreamPool

DRAINED_WHY = "drained by the admin API"


class UnknownBackend(LookupError):
    """No route of the serving config has a backend at that address."""


class SoleBackend(ValueError):
    """Draining would leave a route with no backend at all."""


def mark(backend: Backend, drained: bool) -> None:
    """Take ``backend`` out of rotation (or put it back, its passive health forgotten)."""
    if drained:
        backend.drained = True
        backend.down_until = math.inf
        backend.reason = DRAINED_WHY
    elif backend.drained:
        backend.drained = False
        backend.down_until = 0.0
        backend.reason = ""
        backend.fails = 0


def apply(pool: UpstreamPool, drained: set[Key]) -> None:
    """Mark the pool's backends as ``drained`` says (after a reload, or a message)."""
    for key, backend in pool.backends.items():
        mark(backend, key in drained)


def follow(runtime: Runtime, drained: set[Key]) -> None:
    """Keep applying ``drained`` to each gateway ``runtime`` serves from now on."""
    runtime.served.append(lambda gateway: apply(gateway.pool, drained))


def handle(runtime: Runtime, drained: set[Key], message: channel.BackendDrain) -> None:
    """A worker: the main process drained or enabled one address."""
    key: Key = (message.scheme, message.host, message.port, message.tls)
    if message.drained:
        drained.add(key)
    else:
        drained.discard(key)
    apply(runtime.serving.pool, drained)


class Drains:
    """The main process's side: what the admin API's drain and enable act on."""

    def __init__(self, runtime: Runtime, listeners: Listeners) -> None:
        self.runtime = runtime
        self.listeners = listeners
        self.drained: set[Key] = set()
        follow(runtime, self.drained)
        if isinstance(listeners, WorkerPool):
            listeners.drained = self.drained

    async def drain(self, address: str) -> dict[str, Any]:
        return await self._set_everywhere(address, True)

    async def enable(self, address: str) -> dict[str, Any]:
        return await self._set_everywhere(address, False)

    async def _set_everywhere(self, address: str, drained: bool) -> dict[str, Any]:
        """Set it here and tell the workers; once each has answered a count query sent
        after the message (the channel keeps order), each has applied it."""
        result = self._set(address, drained)
        if isinstance(self.listeners, WorkerPool):
            await self.listeners.counts()
        return result

    def _set(self, address: str, drained: bool) -> dict[str, Any]:
        gateway = self.runtime.serving
        found = matching(gateway, address)
        if not found:
            raise UnknownBackend(f"no route has a backend at {address!r}; the addresses are "
                                 f"{', '.join(sorted(addresses(gateway))) or 'none'} "
                                 "(GET /api/backends)")
        if drained:
            alone = sole_routes(gateway, self.drained | {b.key for b in found})
            if alone:
                raise SoleBackend(f"{address} is the only backend of route "
                                  f"{', '.join(alone)}: draining it would refuse every "
                                  "request there (stop its app, or give the route more "
                                  "backends)")
        for backend in found:
            if drained:
                self.drained.add(backend.key)
            else:
                self.drained.discard(backend.key)
            if isinstance(self.listeners, WorkerPool):
                self.listeners.broadcast(channel.BackendDrain(*backend.key, drained))
        apply(gateway.pool, self.drained)
        return {"drained": drained,
                "addresses": [f"{b.scheme}://{b.label}" for b in found],
                "in_flight": sum(b.in_flight for b in found)}


def route_backends(gateway: Gateway) -> list[list[Backend]]:
    """Each route's backends."""
    out = []
    for route, policy in zip(gateway.routes.routes, gateway.policies.routes, strict=True):
        selector = policy.select_backend
        out.append([m.backend for m in selector.members] if isinstance(selector, Balanced)
                   else [route.backend])
    return out


def addresses(gateway: Gateway) -> set[str]:
    return {f"{b.host}:{b.port}" for backends in route_backends(gateway) for b in backends}


def matching(gateway: Gateway, address: str) -> list[Backend]:
    """The serving backends at ``address``: ``host:port``, or the label (a default port
    left out), a scheme:// in front allowed."""
    wanted = address.split("://", 1)[-1].strip("/").lower()
    found: dict[Key, Backend] = {}
    for backends in route_backends(gateway):
        for backend in backends:
            if wanted in (f"{backend.host}:{backend.port}".lower(), backend.label.lower()):
                found[backend.key] = backend
    return list(found.values())


def sole_routes(gateway: Gateway, keys: set[Key]) -> list[str]:
    """The routes each of whose backends is in ``keys`` (draining would empty them)."""
    return [route.label for route, members in zip(gateway.routes.routes, route_backends(gateway),
                                                  strict=True)
            if all(b.key in keys for b in members)]
