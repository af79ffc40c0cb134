"""Keep every app up: start them in order, restart crashes with backoff, stop them all.

Policy, per app: a crash is restarted after 0.25 s, doubling up to
``restart_delay_max``; a run that lasted longer than ``restart_window``
resets the delay. More than ``max_restarts`` crashes within
``restart_window`` and the app is marked failed: its routes answer 503 and
the other apps keep serving. An app that is up is probed every
``health_interval``; ``unhealthy_after`` failed probes in a row and it is
stopped and counts as a crash, so a hung app is restarted by the same rules.

An app with ``instances = N`` is N supervised processes (``SupervisedApp``), each
on its own port with its own gate, log and restart count. The public actions
(``restart_app``, ``stop_app``, ``start_app``, ``apps_status``; ``apply`` for a
reload) act on every instance of one app, one app at a time (a lock per app).
A restart is rolling: one instance at a time is taken out of rotation (its gate
leaves ``up``, and ``barrier`` waits until every serving process knows), stopped
gracefully (its server finishes the requests it has), started again on its port
and put back once it answers its health path; then the next. With two instances
or more, the others serve meanwhile; with one, requests wait up to
``request_wait`` for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from portico.config.instances import instance_name
from portico.config.plan import AppPlan
from portico.supervisor.commands import app_cwd, server_of
from portico.supervisor.health import until_unhealthy
from portico.supervisor.logs import AppLog, Echo
from portico.supervisor.process import AppProcess, AppStartError
from portico.upstream.availability import Availability, BackendState, Listener

FIRST_DELAY = 0.25
Announce = Callable[[str], None]
Barrier = Callable[[], Awaitable[None]]


class UnknownApp(LookupError):
    """An action named an app the config does not have."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"no app {name!r}; the apps are: {', '.join(known) or 'none'}")


def instance_plans(app: AppPlan) -> list[AppPlan]:
    """One plan per instance: its own name (``app#2``) and bind; one instance is the app."""
    binds = app.binds or [app.bind]
    return [dataclasses.replace(app, name=instance_name(app.name, i, len(binds)), bind=bind)
            for i, bind in enumerate(binds)]


async def _no_barrier() -> None:
    return None


class SupervisedApp:
    """One instance of an app (the app itself when it has one): one process at a time."""

    def __init__(
        self, app: AppPlan, group: str, base_dir: Path, log_dir: Path,
        gate: Availability, echo: Echo | None,
    ) -> None:
        self.app = app  # this instance's plan: its name and bind are the instance's
        self.group = group  # the [[app]] name
        self.cwd = app_cwd(base_dir, app.cwd)
        self.log = AppLog(app.name, log_dir / f"{app.name}.log", app.log_max_size,
                          app.log_backups, echo)
        self.gate = gate
        self.process: AppProcess | None = None
        self.restarts = 0
        self.crashes: deque[float] = deque()
        self.last_exit: int | None = None
        self.last_reason: str | None = None  # why it last went down or failed to start
        self.delay = FIRST_DELAY
        self.watcher: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        process = self.process
        running = process is not None and process.running
        return {
            "name": self.app.name,
            "app": self.group,
            "server": server_of(self.app),
            "bind": self.app.bind,
            "state": str(self.gate.state),
            "pid": process.pid if running and process else None,
            "restarts": self.restarts,
            "uptime": round(time.monotonic() - process.started_at, 1)
            if running and process else None,
            "last_exit": self.last_exit,
            "last_reason": self.last_reason,
            "log": str(self.log.path),
        }


class Supervisor:
    def __init__(
        self,
        apps: list[AppPlan],
        base_dir: Path,
        log_dir: Path,
        loop: asyncio.AbstractEventLoop,
        announce: Announce,
        echo: Echo | None = None,
    ) -> None:
        self.loop = loop
        self.announce = announce
        self.base_dir, self.log_dir, self.echo = base_dir, log_dir, echo
        # every instance's gate by its name; the same dict for the life of the process
        # (the Runtime builds routes from it, the worker pool follows its gates)
        self.gates: dict[str, Availability] = {}
        self.gate_listeners: list[Listener] = []  # given to each gate made from now on
        self.plans: dict[str, AppPlan] = {}
        self.apps: list[SupervisedApp] = []
        for app in apps:
            self._add(app)
        self.stopping = False
        self.hurried = False  # a second Ctrl-C: apps are SIGKILLed, no grace
        # until every serving process knows of a gate change (run.py: a round trip to
        # each worker, whose channel is in order); a draining instance waits for it
        self.barrier: Barrier = _no_barrier
        self._locks: dict[str, asyncio.Lock] = {}

    def _add(self, app: AppPlan) -> list[SupervisedApp]:
        self.plans[app.name] = app
        added = []
        for plan in instance_plans(app):
            gate = self.gates.get(plan.name)
            if gate is None:
                gate = self.gates[plan.name] = Availability(plan.name, self.loop,
                                                            plan.request_wait)
                gate.listeners.extend(self.gate_listeners)
            gate.wait_timeout = plan.request_wait
            added.append(SupervisedApp(plan, app.name, self.base_dir, self.log_dir, gate,
                                       self.echo))
        self.apps.extend(added)
        return added

    def instances(self, name: str) -> list[SupervisedApp]:
        """The app's instances, in order; UnknownApp if there is no such app."""
        found = [entry for entry in self.apps if entry.group == name]
        if not found:
            raise UnknownApp(name, list(self.plans))
        return found

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def start_all(self) -> None:
        """Start apps one by one, each ready before the next; AppStartError stops everything."""
        for entry in list(self.apps):
            try:
                await self._start(entry)
            except AppStartError as exc:
                entry.last_reason = exc.reason
                entry.gate.set(BackendState.FAILED)
                await self.stop_all()
                raise
            self._announce_started(entry)
            entry.watcher = self.loop.create_task(self._watch(entry))

    def _announce_started(self, entry: SupervisedApp) -> None:
        self.announce(
            f"app {entry.app.name}: pid {entry.process.pid if entry.process else '?'}, "
            f"{server_of(entry.app)} on {entry.app.bind}"
        )

    async def _start(self, entry: SupervisedApp) -> None:
        entry.process = AppProcess(entry.app, entry.cwd, entry.log)
        await entry.process.spawn()
        await entry.process.wait_ready()
        entry.gate.set(BackendState.UP)

    async def _watch(self, entry: SupervisedApp) -> None:
        app = entry.app
        start_failure: str | None = None  # the last restart's; its process is stopped
        while True:
            entry.last_reason = start_failure or await self._until_down(entry)
            if self.stopping:
                return
            now = time.monotonic()
            assert entry.process is not None
            ran_for = now - entry.process.started_at
            if ran_for > app.restart_window:
                entry.delay = FIRST_DELAY
            entry.crashes.append(now)
            while entry.crashes and entry.crashes[0] < now - app.restart_window:
                entry.crashes.popleft()
            if len(entry.crashes) > app.max_restarts:
                entry.gate.set(BackendState.FAILED)
                self.announce(
                    f"app {app.name}: {entry.last_reason}; {len(entry.crashes)} crashes "
                    f"within {app.restart_window:g}s, marked failed (see {entry.log.path})"
                )
                return
            entry.gate.set(BackendState.RESTARTING)
            self.announce(f"app {app.name}: {entry.last_reason}; restarting in {entry.delay:g}s")
            await asyncio.sleep(entry.delay)
            entry.delay = min(entry.delay * 2, app.restart_delay_max)
            if self.stopping:
                return
            try:
                await self._start(entry)
            except AppStartError as exc:
                self.announce(f"app {app.name}: restart failed: {exc.reason}")
                start_failure = exc.reason  # counted as a crash, next round
                if entry.process.proc is not None:
                    entry.last_exit = entry.process.proc.returncode
                continue
            start_failure = None
            entry.restarts += 1
            self.announce(f"app {app.name}: back up, pid {entry.process.pid}")

    async def _until_down(self, entry: SupervisedApp) -> str:
        """Wait until the app exits, or fails ``unhealthy_after`` probes in a row (then
        stop it); say why it went down."""
        process = entry.process
        assert process is not None
        exited = asyncio.ensure_future(process.wait_exit())
        unhealthy = asyncio.ensure_future(until_unhealthy(entry.app, entry.log.line))
        try:
            await asyncio.wait({exited, unhealthy}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                entry.last_exit = exited.result()
                return f"exited with status {entry.last_exit}"
            reason = unhealthy.result()
            self.announce(f"app {entry.app.name}: {reason}; stopping it")
            await process.stop()
            entry.last_exit = await exited
            return reason
        finally:
            exited.cancel()
            unhealthy.cancel()

    def kill_all(self) -> None:
        """A second Ctrl-C: SIGKILL every app's process group now, none restarted; a
        stop_all() under way or to come reaps them without waiting out a grace."""
        self.stopping = True
        self.hurried = True
        for entry in self.apps:
            if entry.process is not None:
                entry.process.kill()

    async def stop_all(self) -> None:
        """Stop apps in reverse order: SIGTERM, grace, SIGKILL; wait for every one."""
        self.stopping = True
        for entry in reversed(self.apps):
            if entry.watcher is not None:
                entry.watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await entry.watcher
            entry.gate.set(BackendState.STOPPED)
            if entry.process is not None:
                await entry.process.stop(hurry=self.hurried)
            entry.log.close()

    def status(self) -> list[dict[str, Any]]:
        return [entry.status() for entry in self.apps]

    # -- public actions (the control socket's /api/apps, ``portico app``, SIGUSR2) ---------
    def apps_status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Each instance's row (of one app, if ``name``; UnknownApp if none has it)."""
        entries = self.apps if name is None else self.instances(name)
        return [entry.status() for entry in entries]

    async def restart_app(self, name: str) -> None:
        """Rolling: each instance in turn out of rotation, stopped, started, back in.
        AppStartError if one does not come back (it is marked failed, the ones after it
        are left running)."""
        async with self._lock(name):
            for entry in self.instances(name):
                await self._cycle(entry, entry.app)
                self.announce(f"app {entry.app.name}: restarted, pid {entry.process.pid}"
                              if entry.process else f"app {entry.app.name}: restarted")

    async def stop_app(self, name: str) -> None:
        """Stop every instance (its routes answer 503 until ``start_app``)."""
        async with self._lock(name):
            for entry in self.instances(name):
                await self._halt(entry, BackendState.STOPPED)
                self.announce(f"app {entry.app.name}: stopped")

    async def start_app(self, name: str) -> None:
        """Start the instances that are not running (stopped, or marked failed)."""
        async with self._lock(name):
            for entry in self.instances(name):
                if entry.process is not None and entry.process.running and \
                        entry.watcher is not None and not entry.watcher.done():
                    continue
                await self._halt(entry, BackendState.STARTING)
                await self._launch(entry)

    async def _halt(self, entry: SupervisedApp, state: BackendState) -> None:
        """Out of rotation (``state``), every serving process told, then stopped
        gracefully: its server finishes the requests it has."""
        if entry.watcher is not None:
            entry.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entry.watcher
            entry.watcher = None
        entry.gate.set(state)
        await self.barrier()
        if entry.process is not None:
            await entry.process.stop()

    async def _launch(self, entry: SupervisedApp) -> None:
        entry.crashes.clear()
        entry.delay = FIRST_DELAY
        try:
            await self._start(entry)
        except AppStartError as exc:
            entry.last_reason = exc.reason
            entry.gate.set(BackendState.FAILED)
            self.announce(f"app {entry.app.name}: did not start: {exc.reason}")
            raise
        self._announce_started(entry)
        entry.watcher = self.loop.create_task(self._watch(entry))

    async def _cycle(self, entry: SupervisedApp, plan: AppPlan) -> None:
        """One instance stopped and started again, with ``plan`` (a reload's)."""
        await self._halt(entry, BackendState.RESTARTING)
        entry.app = plan
        entry.gate.wait_timeout = plan.request_wait
        entry.restarts += 1
        await self._launch(entry)

    # -- a reload's [[app]] changes -----------------------------------------------------
    def changes(self, apps: list[AppPlan]) -> tuple[list[AppPlan], list[AppPlan], list[str]]:
        """(added, changed, removed names) between the running apps and ``apps``."""
        new = {app.name: app for app in apps}
        added = [app for app in apps if app.name not in self.plans]
        changed = [app for app in apps if app.name in self.plans and self.plans[app.name] != app]
        removed = [name for name in self.plans if name not in new]
        return added, changed, removed

    async def add_app(self, app: AppPlan) -> None:
        """A reload added ``app``: start it (before the routes to it serve); if it does
        not come up, AppStartError and it is gone again."""
        async with self._lock(app.name):
            entries = self._add(app)
            try:
                for entry in entries:
                    await self._launch(entry)
            except AppStartError:
                await self._discard(app.name)
                raise

    async def change_app(self, app: AppPlan) -> None:
        """A reload changed ``app``: rolling restart with the new plan when its instances
        keep their ports, else every instance stopped, then the new ones started (the
        requests meanwhile wait up to ``request_wait``)."""
        async with self._lock(app.name):
            old = self.instances(app.name)
            plans = instance_plans(app)
            self.plans[app.name] = app
            if [entry.app.bind for entry in old] == [plan.bind for plan in plans]:
                for entry, plan in zip(old, plans, strict=True):
                    await self._cycle(entry, plan)
                self.announce(f"app {app.name}: restarted with its new settings")
                return
            for entry in old:
                await self._halt(entry, BackendState.RESTARTING)
                entry.log.close()
                self.apps.remove(entry)
            for name in {entry.app.name for entry in old} - {plan.name for plan in plans}:
                self.gates[name].set(BackendState.STOPPED)
            for entry in self._add(app):
                await self._launch(entry)

    async def remove_app(self, name: str) -> None:
        """A reload removed the app: its routes are gone; stop it (gracefully)."""
        async with self._lock(name):
            for entry in self.instances(name):
                await self._halt(entry, BackendState.STOPPED)
            await self._discard(name)
            self.announce(f"app {name}: removed from the config, stopped")

    async def _discard(self, name: str) -> None:
        for entry in [entry for entry in self.apps if entry.group == name]:
            if entry.process is not None:
                await entry.process.stop()
            entry.log.close()
            self.apps.remove(entry)
            self.gates.pop(entry.app.name, None)
        self.plans.pop(name, None)
