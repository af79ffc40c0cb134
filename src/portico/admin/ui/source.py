"""Where the UI reads a running portico: its status, plan, config, audit log, metrics,
app logs and doctor.

``StatusSource`` is what the pages need; ``AdminSource`` is the running portico seen
from its main process (the admin API's ``AdminContext``): the UI never runs in a proxy
worker. Tests give the pages a fixed source of their own."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from portico.admin.facade import AdminContext
    from portico.config.plan import ServingPlan


class StatusSource(Protocol):
    async def status(self) -> dict[str, Any]: ...

    async def doctor(self, route: str) -> dict[str, Any] | None: ...

    async def plan(self) -> ServingPlan | None: ...

    async def config(self) -> dict[str, Any] | None:
        """The config file's text, its ETag, and the applied versions (admin only)."""
        ...

    async def audit(self) -> list[dict[str, Any]] | None: ...

    async def metrics(self) -> bytes | None:
        """``GET /metrics``'s Prometheus text, when this portico has metrics."""
        ...

    async def backends(self) -> list[dict[str, Any]] | None: ...


async def doctor_for(info: dict[str, Any], route: str, key: str,
                     runtime_dir: Path) -> dict[str, Any] | None:
    """The doctor's report for ``route`` of the portico whose status is ``info``."""
    from portico.doctor.probe import Target, probe
    from portico.doctor.token import read_token

    token = read_token(runtime_dir, key)
    row = next((r for r in info["routes"] if r["route"] == route), None)
    if row is None or token is None or not info["listen"]:
        return None
    apps = {a["name"]: a for a in info["apps"]}
    app = apps.get(row["app"] or "")
    host, _, path = route.partition("/")
    target = Target(route=route, path="/" + path, host=host or None, app=row["app"],
                    server=app["server"] if app else None, kind=None,
                    preserve_path=row["path"] == "preserved",
                    preserve_host=bool(row.get("preserve_host")))
    report = await asyncio.to_thread(probe, info["listen"][0], target, token)
    return report.as_json()


def access_tail(plan: ServingPlan | None, routes: list[str], lines: int = 30) -> list[str]:
    """The access log's last lines for ``routes`` (labels), when it is written to a file
    (``route=LABEL`` in the combined format, ``"route": "LABEL"`` in JSON)."""
    if plan is None or plan.server.access_log in ("-", "off", ""):
        return []
    marks = [f"route={label} " for label in routes] + [f'"route": "{label}"' for label in routes]
    found = [line for line in tail(plan.server.access_log, 1000)
             if any(mark in line for mark in marks)]
    return found[-lines:]


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


class AdminSource:
    """The running portico from inside its main process (the admin API's context)."""

    def __init__(self, admin: AdminContext) -> None:
        self.admin = admin

    async def status(self) -> dict[str, Any]:
        return await self.admin.snapshot()

    async def doctor(self, route: str) -> dict[str, Any] | None:
        from portico.admin.runtime import runtime_dir

        info = await self.status()
        rows = {r["route"]: r for r in self.admin.routes()}
        for row in info["routes"]:
            row["preserve_host"] = rows.get(row["route"], {}).get("preserve_host", False)
        return await doctor_for(info, route, self.admin.key, runtime_dir())

    async def plan(self) -> ServingPlan | None:
        return self.admin.reloader.run.serving

    async def config(self) -> dict[str, Any] | None:
        from dataclasses import asdict

        from portico.admin.configedit import History
        from portico.admin.facade import etag_of

        text = self.admin.config_text()
        history = History(self.admin.state_dir, self.admin.admin.history)
        return {"file": str(self.admin.config_file or "(built-in default)"),
                "editable": self.admin.config_file is not None,
                "text": text.decode("utf-8", "replace"), "etag": etag_of(text),
                "versions": [asdict(v) for v in reversed(history.versions())]}

    async def audit(self) -> list[dict[str, Any]] | None:
        from portico.admin import audit

        return await asyncio.to_thread(audit.tail, self.admin, 200)

    async def metrics(self) -> bytes | None:
        render = getattr(self.admin, "metrics", None)  # set when metrics are on
        return render() if render is not None else None

    async def backends(self) -> list[dict[str, Any]] | None:
        return self.admin.backends()
