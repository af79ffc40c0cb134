"""Reload: what a running portico changes without a restart (SIGHUP reads the config again).

A reload reads and checks the whole file first; only a config that loads,
validates and builds is put in place, so a typo leaves the old one serving
and says why. Routes, header rules, limits, timeouts, the access log and the
certificates change this way. The listen addresses, the worker count and the
``[[app]]`` tables are fixed for the life of the process (sockets and app
processes would have to be replaced); a reload that changes them is refused
with the reason.

Every serving process (the main one with ``workers = 1``, else each worker)
holds a ``Runtime``. A reload builds a new gateway there; new connections get it
at once, and the old one drains its connections in the background: the
in-flight requests finish under the config they began with, then
``Connection: close``; a kept-alive idle connection may still send one request
for ``RELOAD_IDLE_GRACE`` (server/drain.py). A request read by the old gateway
after the swap goes to its successor (``Gateway.successor``, followed in
server/protocol.py). With workers, the main process sends the checked plan
over the channel (server/channel.py) and each worker swaps in place: the same
processes serve on, unlike nginx, which starts new workers.

The file is checked by a short-lived child (``reload_plan``, config/prepare.py)
where the serving process was handed over to and has no pydantic of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portico.config.plan import RunPlan, ServingPlan
from portico.config.prepare import reload_plan
from portico.config.provision import build_cert_store, build_gateway
from portico.errors import ConfigError
from portico.proxy.gateway import Gateway
from portico.server.drain import RELOAD_IDLE_GRACE, drain, open_counts
from portico.server.workers import WorkerStartError
from portico.upstream.availability import Availability

if TYPE_CHECKING:
    from portico.server.listeners import Listeners
    from portico.tls.store import CertFacts, CertStore

Say = Callable[[str], None]


@dataclass
class Built:
    """A gateway and certificates built from a plan, not yet serving."""

    plan: ServingPlan
    gateway: Gateway
    certs: CertStore | None

    def discard(self) -> None:
        self.gateway.access_log.close()  # the one it opened; the serving one stays


class Runtime:
    """One serving process's state: the gateway new connections get, the certificates
    its listeners use, and the gateways a reload replaced while they drain."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, gates: dict[str, Availability], say: Say
    ) -> None:
        self.loop = loop
        self.gates = gates
        self.say = say
        self.https_port = 443  # the https listener's port, once it is bound
        self.gateway: Gateway | None = None  # None until ``open``
        self.plan: ServingPlan | None = None  # the gateway's
        self.certs: CertStore | None = None
        self._draining: dict[asyncio.Task[int], Gateway] = {}
        self._cut = asyncio.Event()

    def build(self, plan: ServingPlan, cert_facts: list[CertFacts] | None = None) -> Built:
        """The one place a gateway is built from a plan (at start and at each reload).
        ConfigError if the plan cannot be served here (a certificate file gone)."""
        certs = build_cert_store(plan, self.say, cert_facts)
        # a reload's gateway shares the serving one's pool: unchanged backends keep
        # their warm connections and their state
        pool = self.gateway.pool if self.gateway is not None else None
        gateway = build_gateway(plan, self.loop, self.gates, pool=pool)
        gateway.https_port = self.https_port
        return Built(plan, gateway, certs)

    def open(self, built: Built) -> Gateway:
        """The first gateway: it serves from now on."""
        self.gateway, self.certs, self.plan = built.gateway, built.certs, built.plan
        return built.gateway

    def set_https_port(self, port: int) -> None:
        self.https_port = port
        if self.gateway is not None:
            self.gateway.https_port = port

    def swap(self, built: Built) -> None:
        """A reload: ``built`` serves new connections; the gateway it replaces drains."""
        old = self.serving
        self.certs = self._adopt(built.certs)
        built.gateway.https_port = self.https_port
        built.gateway.start_clock()
        built.gateway.serve_backends()
        old.successor = built.gateway
        self.gateway, self.plan = built.gateway, built.plan
        task = self.loop.create_task(drain(old, [], built.plan.server.drain_timeout,
                                           RELOAD_IDLE_GRACE, self._cut))
        self._draining[task] = old
        task.add_done_callback(self._forget)

    @property
    def serving(self) -> Gateway:
        assert self.gateway is not None, "Runtime.open first"
        return self.gateway

    def counts(self) -> tuple[int, int]:
        """(client connections, requests in flight), the draining gateways included."""
        counts = [open_counts(gateway) for gateway in [self.serving, *self._draining.values()]]
        return sum(c for c, _ in counts), sum(r for _, r in counts)

    async def stop(
        self, servers: list[asyncio.base_events.Server], timeout: float | None = None
    ) -> int:
        """Drain the serving gateway (closing ``servers``) for up to ``timeout`` (the
        drain_timeout in force), then wait for those a reload replaced; how many
        connections were cut at the timeout."""
        if timeout is None:
            assert self.plan is not None
            timeout = self.plan.server.drain_timeout
        left = await drain(self.serving, servers, timeout, cut=self._cut)
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
        return left

    def cut(self) -> None:
        """A second Ctrl-C: every drain here closes what it still has open."""
        self._cut.set()

    def _forget(self, task: asyncio.Task[int]) -> None:
        self._draining.pop(task, None)

    def _adopt(self, fresh: CertStore | None) -> CertStore | None:
        """The running store stays the listener's (its SNI callback is bound to it) and
        takes the freshly loaded certificates over."""
        if self.certs is None or fresh is None:
            return fresh
        self.certs.adopt(fresh)
        return self.certs


@dataclass
class Reloader:
    """SIGHUP: check the config file again and, if it is good, put it in place."""

    run: RunPlan
    runtime: Runtime
    listeners: Listeners  # a reload reaches the workers through them
    announce: Say
    lean: bool  # the config is checked by a child process (see the module's doc)
    _task: asyncio.Task[bool] | None = field(default=None)

    def start_reload(self) -> None:
        """SIGHUP's handler: one reload at a time; a signal during one is said and dropped."""
        if self._task is not None and not self._task.done():
            self.announce("reload: one is in progress already; send SIGHUP again after it")
            return
        self._task = self.runtime.loop.create_task(self.reload())

    async def reload_done(self) -> None:
        """At stop, first: a reload under way finishes (or is refused) before the drain."""
        if self._task is not None and not self._task.done():
            await self._task

    async def reload_now(self) -> bool:
        """A reload the admin API asked for: after the one under way, if any (a SIGHUP
        meanwhile is said and dropped, as during any reload); True if it was put in place."""
        await self.reload_done()
        self._task = self.runtime.loop.create_task(self.reload())
        return await self._task

    async def reload(self) -> bool:
        """Read the config file again and put it in place if it is good; True if it was."""
        config_file = self.run.config_file
        if config_file is None:
            self.announce("reload: running the built-in default; nothing to read again")
            return False
        built: Built | None = None
        try:
            # Every certificate file is checked here, before any worker loads it: a bad
            # one refuses the reload (the workers would load what is on disk).
            run, said = await reload_plan(self.run, in_process=not self.lean)
            for line in said:
                self.announce(line)
            fixed = fixed_fields_changed(self.run, run)
            if fixed:
                raise ConfigError(str(config_file), fixed, "changed; this takes a restart "
                                  "(a reload changes routes, headers, limits, log and TLS)")
            built = self.runtime.build(run.serving, run.cert_facts)
            await self.listeners.reload(run.serving)
        except (ConfigError, WorkerStartError) as exc:
            if built is not None:
                built.discard()
            if isinstance(exc, ConfigError) and not exc.file:
                exc = ConfigError(str(config_file), exc.key, exc.message)
            self.announce(f"reload refused: {exc}; the config loaded before keeps serving")
            return False
        self.runtime.swap(built)
        self.run = run
        self.announce(f"reloaded {config_file}: {len(built.gateway.routes.routes)} routes")
        return True


def fixed_fields_changed(before: RunPlan, after: RunPlan) -> str:
    """The first config key a reload cannot change, or ""."""
    for key, value in before.restart_only.items():
        if after.restart_only.get(key) != value:
            return key
    return ""
