"""What a running portico changes without a restart: SIGHUP reloads the config file.

A reload reads and checks the whole file first; only a config that loads,
validates and builds is put in place, so a typo leaves the old one serving
and says why. Routes, header rules, limits, timeouts, the access log and the
certificates change this way. The listen addresses, the worker count and the
``[[app]]`` tables are fixed for the life of the process (sockets and app
processes would have to be replaced); a reload that changes them is refused
with the reason.

In one process, new connections get a new gateway at once and the old one
drains its connections in the background (their in-flight requests finish,
then ``Connection: close``). With workers, a new set of workers is started on
the same listening sockets with the new plan and, once all say ready, the old
ones drain and exit: nginx's reload.

The file is checked by a short-lived child (config/prepare.py) where the
serving process was handed over to and has no pydantic of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from portico.config.plan import RunPlan
from portico.config.prepare import reload_plan
from portico.config.provision import build_cert_store, build_gateway
from portico.errors import ConfigError
from portico.proxy.gateway import Gateway
from portico.server.drain import RELOAD_IDLE_GRACE, drain
from portico.server.workers import WorkerPool, WorkerStartError
from portico.upstream.availability import Availability

if TYPE_CHECKING:
    from portico.tls.store import CertStore


@dataclass
class Live:
    """The config in force and what was built from it; ``gateway`` serves new connections."""

    run: RunPlan
    gateway: Gateway
    certs: CertStore | None
    workers: WorkerPool | None
    gates: dict[str, Availability]
    announce: Callable[[str], None]
    lean: bool  # the config is checked by a child process (see the module's doc)
    _task: asyncio.Task[bool] | None = None
    _draining: dict[asyncio.Task[int], Gateway] = field(default_factory=dict)  # replaced
    _cut: asyncio.Event = field(default_factory=asyncio.Event)

    def start_reload(self) -> None:
        """SIGHUP's handler: one reload at a time; a signal during one is said and dropped."""
        if self._task is not None and not self._task.done():
            self.announce("reload: one is in progress already; send SIGHUP again after it")
            return
        self._task = self.gateway.loop.create_task(self.reload())

    async def reload_done(self) -> None:
        """At stop, first: a reload under way finishes (or is refused) before the drain."""
        if self._task is not None and not self._task.done():
            await self._task

    async def settled(self) -> None:
        """At stop, last: gateways a reload replaced finish draining."""
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)

    def draining(self) -> list[Gateway]:
        """The gateways a reload replaced that still drain their connections."""
        return list(self._draining.values())

    def cut(self) -> None:
        """A second Ctrl-C: the replaced gateways close what they still have open."""
        self._cut.set()

    async def reload(self) -> bool:
        """Read the config file again and put it in place if it is good; True if it was."""
        config_file = self.run.config_file
        if config_file is None:
            self.announce("reload: running the built-in default; nothing to read again")
            return False
        gateway: Gateway | None = None
        try:
            # Every certificate file is checked here, before any worker loads it: a bad
            # one refuses the reload (new workers would load what is on disk).
            run, said = await reload_plan(self.run, in_process=not self.lean)
            for line in said:
                self.announce(line)
            fixed = _fixed_fields_changed(self.run, run)
            if fixed:
                raise ConfigError(str(config_file), fixed, "changed; this takes a restart "
                                  "(a reload changes routes, headers, limits, log and TLS)")
            plan = run.serving
            loop = self.gateway.loop
            gateway = build_gateway(plan, loop, self.gates, pool=self.gateway.pool)
            fresh = build_cert_store(plan, self.announce, run.cert_facts)
            if self.workers is not None:
                await self.workers.rotate(plan, plan.server.drain_timeout)
        except (ConfigError, WorkerStartError) as exc:
            if gateway is not None:
                gateway.access_log.close()  # the one it opened; the old one stays
            if isinstance(exc, ConfigError) and not exc.file:
                exc = ConfigError(str(config_file), exc.key, exc.message)
            self.announce(f"reload refused: {exc}; the config loaded before keeps serving")
            return False
        certs = self._adopt(fresh)
        old = self.gateway
        gateway.https_port = old.https_port
        gateway.start_clock()
        gateway.serve_backends()
        old.successor = gateway
        self.run, self.gateway, self.certs = run, gateway, certs
        task = loop.create_task(drain(old, [], plan.server.drain_timeout, RELOAD_IDLE_GRACE,
                                      self._cut))
        self._draining[task] = old
        task.add_done_callback(self._forget)
        self.announce(f"reloaded {config_file}: {len(gateway.routes.routes)} routes"
                      + (f", {len(self.workers.workers)} new workers" if self.workers else ""))
        return True

    def _forget(self, task: asyncio.Task[int]) -> None:
        self._draining.pop(task, None)

    def _adopt(self, fresh: CertStore | None) -> CertStore | None:
        """The running store stays the listener's (its SNI callback is bound to it) and
        takes the freshly loaded certificates over."""
        if self.certs is None or fresh is None:
            return fresh
        self.certs.adopt(fresh)
        return self.certs


def _fixed_fields_changed(before: RunPlan, after: RunPlan) -> str:
    """The first config key a reload cannot change, or ""."""
    for key, value in before.restart_only.items():
        if after.restart_only.get(key) != value:
            return key
    return ""
