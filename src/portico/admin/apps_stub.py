"""App start/stop/restart over today's Supervisor, for the admin API.

A stand-in with the Runtime's method names (``restart_app``, ``stop_app``,
``start_app``, ``apps_status``) until supervisor/ makes them public (rolling restart
of app instances); the API calls whichever the running portico has (server/run.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from portico.admin.facade import UnknownApp
from portico.supervisor.process import AppStartError
from portico.supervisor.supervisor import SupervisedApp, Supervisor
from portico.upstream.availability import BackendState


class SupervisorApps:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._locks: dict[str, asyncio.Lock] = {}

    def _entry(self, name: str) -> SupervisedApp:
        for entry in self.supervisor.apps:
            if entry.app.name == name:
                return entry
        raise UnknownApp(name)

    async def _halt(self, entry: SupervisedApp, state: BackendState) -> None:
        if entry.watcher is not None:
            entry.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entry.watcher
            entry.watcher = None
        entry.gate.set(state)
        if entry.process is not None and entry.process.running:
            await entry.process.stop()
            if entry.process.proc is not None:
                entry.last_exit = entry.process.proc.returncode

    async def _bring_up(self, entry: SupervisedApp) -> None:
        try:
            await self.supervisor._start(entry)
        except AppStartError as exc:
            entry.last_reason = exc.reason
            entry.gate.set(BackendState.FAILED)
            raise
        entry.watcher = self.supervisor.loop.create_task(self.supervisor._watch(entry))

    async def restart_app(self, name: str) -> None:
        entry = self._entry(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            await self._halt(entry, BackendState.RESTARTING)
            entry.last_reason = "restarted through the admin API"
            await self._bring_up(entry)
            entry.restarts += 1

    async def stop_app(self, name: str) -> None:
        entry = self._entry(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            await self._halt(entry, BackendState.STOPPED)
            entry.last_reason = "stopped through the admin API"

    async def start_app(self, name: str) -> None:
        entry = self._entry(name)
        async with self._locks.setdefault(name, asyncio.Lock()):
            if entry.process is not None and entry.process.running:
                return
            entry.gate.set(BackendState.STARTING)
            await self._bring_up(entry)

    def apps_status(self) -> list[dict[str, Any]]:
        return self.supervisor.status()
