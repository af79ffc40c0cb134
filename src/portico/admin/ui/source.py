"""Where the UI reads a running portico: its status snapshot, its app logs, its doctor.

``StatusSource`` is what the pages need; ``ControlSource`` reads it over the control
socket (admin/control.py), so the UI can run in the main process (the admin app mounts
it) or beside it, and it never runs in a proxy worker."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from portico.config.plan import ServingPlan


class StatusSource(Protocol):
    async def status(self) -> dict[str, Any]: ...

    async def doctor(self, route: str) -> dict[str, Any] | None: ...

    async def plan(self) -> ServingPlan | None: ...


class ControlSource:
    """A running portico, through its control socket and runtime directory."""

    def __init__(self, control: Path, runtime_dir: Path, key: str) -> None:
        self.control = control
        self.runtime_dir = runtime_dir
        self.key = key

    async def status(self) -> dict[str, Any]:
        from portico.admin.control import fetch_status

        return await fetch_status(self.control)

    async def doctor(self, route: str) -> dict[str, Any] | None:
        from portico.doctor.probe import Target, probe
        from portico.doctor.token import read_token

        info = await self.status()
        token = read_token(self.runtime_dir, self.key)
        row = next((r for r in info["routes"] if r["route"] == route), None)
        if row is None or token is None or not info["listen"]:
            return None
        apps = {a["name"]: a for a in info["apps"]}
        app = apps.get(row["app"] or "")
        host, _, path = route.partition("/")
        target = Target(route=route, path="/" + path, host=host or None, app=row["app"],
                        server=app["server"] if app else None, kind=None,
                        preserve_path=row["path"] == "preserved", preserve_host=False)
        report = await asyncio.to_thread(probe, info["listen"][0], target, token)
        return report.as_json()

    async def plan(self) -> ServingPlan | None:
        return await plan_of(await self.status())


async def plan_of(info: dict[str, Any]) -> ServingPlan | None:
    """The routes as the running portico serves them: its config file compiled with its
    apps' ports (a config edited since, but not reloaded, shows the edit)."""
    from portico.config.compile import compile_plan
    from portico.config.load import load
    from portico.errors import ConfigError

    binds = {app["name"]: app["bind"] for app in info["apps"]}
    try:
        config, base_dir = await asyncio.to_thread(load, info.get("config"))
        return compile_plan(config, base_dir, Path("."), None, binds).serving
    except (ConfigError, KeyError, OSError):
        return None


def tail(path: str | None, lines: int = 50) -> list[str]:
    """The last ``lines`` lines of a log file (bounded read: the file may be large)."""
    if not path:
        return []
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - 64 * 1024))
            return list(deque(log.read().decode("utf-8", "replace").splitlines(), lines))
    except OSError:
        return []
