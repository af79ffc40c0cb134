"""Keep every app up: start them in order, restart crashes with backoff, stop them all.

Policy, per app: a crash is restarted after 0.25 s, doubling up to
``restart_delay_max``; a run that lasted longer than ``restart_window``
resets the delay. More than ``max_restarts`` crashes within
``restart_window`` and the app is marked failed: its routes answer 503 and
the other apps keep serving. An app that is up is probed every
``health_interval``; ``unhealthy_after`` failed probes in a row and it is
stopped and counts as a crash, so a hung app is restarted by the same rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from portico.config.plan import AppPlan
from portico.supervisor.commands import app_cwd, server_of
from portico.supervisor.health import until_unhealthy
from portico.supervisor.logs import AppLog, Echo
from portico.supervisor.process import AppProcess, AppStartError
from portico.upstream.availability import Availability, BackendState

FIRST_DELAY = 0.25
Announce = Callable[[str], None]


class SupervisedApp:
    def __init__(
        self, app: AppPlan, base_dir: Path, log_dir: Path, loop: asyncio.AbstractEventLoop,
        echo: Echo | None,
    ) -> None:
        self.app = app
        self.cwd = app_cwd(base_dir, app.cwd)
        self.log = AppLog(app.name, log_dir / f"{app.name}.log", app.log_max_size,
                          app.log_backups, echo)
        self.gate = Availability(app.name, loop, app.request_wait)
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
        self.apps = [SupervisedApp(app, base_dir, log_dir, loop, echo) for app in apps]
        self.stopping = False
        self.hurried = False  # a second Ctrl-C: apps are SIGKILLed, no grace

    @property
    def gates(self) -> dict[str, Availability]:
        return {entry.app.name: entry.gate for entry in self.apps}

    async def start_all(self) -> None:
        """Start apps one by one, each ready before the next; AppStartError stops everything."""
        for entry in self.apps:
            try:
                await self._start(entry)
            except AppStartError as exc:
                entry.last_reason = exc.reason
                entry.gate.set(BackendState.FAILED)
                await self.stop_all()
                raise
            self.announce(
                f"app {entry.app.name}: pid {entry.process.pid if entry.process else '?'}, "
                f"{server_of(entry.app)} on {entry.app.bind}"
            )
            entry.watcher = self.loop.create_task(self._watch(entry))

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
