"""Apply a config text: validate → write → reload → watch → keep, or roll back (S9-S11).

The file is checked with the config model first (errors at their key, nothing
written), written whole (a temporary file renamed over it, mode kept), then reloaded
as SIGHUP would; if the reload refuses it (a certificate gone, a restart-only key),
the old text is written back and the old config keeps serving. An applied config is
then watched for ``[admin] watch`` seconds: a changed route whose app is not up, or
whose upstream refuses connections, twice in a row, puts the previous config back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portico.admin.audit import record
from portico.admin.configedit import History, diff
from portico.admin.facade import AdminContext, etag_of
from portico.admin.validate import validate
from portico.upstream.availability import BackendState

if TYPE_CHECKING:
    from starlette.requests import Request

    from portico.config.plan import RoutePlan

FAILS_TO_ROLL_BACK = 2  # consecutive failed checks of one changed route
CONNECT_TIMEOUT = 1.0


class Outcome:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


class Applier:
    def __init__(self, admin: AdminContext) -> None:
        self.admin = admin
        self.lock = asyncio.Lock()
        self.history = History(admin.state_dir, admin.admin.history)
        self.watching: asyncio.Task[None] | None = None
        self.watch_state: dict[str, Any] | None = None

    async def check(self, text: str) -> list[dict[str, str]]:
        name = str(self.admin.config_file or "<built-in default>")
        return await validate(text, name, in_process=not self.admin.reloader.lean)

    async def apply(
        self, text: str, if_match: str | None, who: str, action: str,
        request: Request | None, watch: bool = True,
    ) -> Outcome:
        async with self.lock:
            return await self._apply(text, if_match, who, action, request, watch)

    async def _apply(
        self, text: str, if_match: str | None, who: str, action: str,
        request: Request | None, watch: bool,
    ) -> Outcome:
        admin = self.admin
        file = admin.config_file
        if file is None:
            return Outcome(409, {"error": "portico runs the built-in default config; "
                                          "start it with -c FILE to edit a config"})
        current = file.read_bytes()
        tag = etag_of(current)
        if if_match is None:
            return Outcome(428, {"error": "send If-Match with the ETag of GET /api/config",
                                 "etag": tag})
        if if_match not in (tag, "*"):
            return Outcome(412, {"error": "the config file changed since you read it "
                                          "(by hand, or another edit): GET it again",
                                 "etag": tag})
        errors = await self.check(text)
        if errors:
            record(admin, request, action, str(file), {"ok": False, "errors": errors},
                   before=tag, actor=who if request is None else None)
            return Outcome(422, {"error": "the config is not valid; nothing was written",
                                 "errors": errors})
        before = current.decode("utf-8", "replace")
        if text == before:
            return Outcome(200, {"applied": False, "reason": "no change", "etag": tag})
        if not self.history.versions():
            self.history.add(before, "portico", "before the first edit", tag, "")
        old_routes = list(admin.reloader.run.serving.routes)
        write_config(file, text)
        ok, why = await admin.reload()
        if not ok:
            write_config(file, before)
            record(admin, request, action, str(file), {"ok": False, "error": why},
                   before=tag, after=etag_of(text.encode()),
                   actor=who if request is None else None)
            return Outcome(422, {"error": why or "the reload refused the config; the "
                                 "previous config keeps serving",
                                 "errors": [{"key": "", "message": why or "reload refused"}]})
        new_tag = etag_of(text.encode())
        change = diff(before, text, file.name)
        version = self.history.add(text, who, action, new_tag, change)
        record(admin, request, action, str(file), {"ok": True, "version": version.version},
               before=tag, after=new_tag, actor=who if request is None else None)
        seconds = admin.admin.watch if watch else 0.0
        changed = changed_routes(old_routes, list(admin.reloader.run.serving.routes))
        if self.watching is not None:
            self.watching.cancel()
        if seconds > 0 and changed:
            self.watch_state = {"version": version.version, "until": time.time() + seconds,
                                "routes": [_name(r) for r in changed], "result": "watching"}
            self.watching = asyncio.ensure_future(
                self._watch(changed, before, version.version, seconds))
        return Outcome(200, {"applied": True, "version": version.version, "etag": new_tag,
                             "diff": change, "watch": seconds if changed else 0,
                             "changed_routes": [_name(r) for r in changed]})

    async def rollback(self, version: int, who: str, request: Request | None) -> Outcome:
        text = self.history.text(version)
        if text is None:
            kept = [v.version for v in self.history.versions()]
            return Outcome(404, {"error": f"no config version {version}; kept: {kept}"})
        async with self.lock:
            file = self.admin.config_file
            tag = etag_of(file.read_bytes()) if file else None
            return await self._apply(text, tag, who, f"rollback to {version}", request, True)

    async def _watch(
        self, routes: list[RoutePlan], previous: str, version: int, seconds: float
    ) -> None:
        interval = min(1.0, max(0.2, seconds / 5))
        fails = {_name(r): 0 for r in routes}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(interval)
            for route in routes:
                reason = await self.unhealthy(route)
                fails[_name(route)] = fails[_name(route)] + 1 if reason else 0
                if fails[_name(route)] >= FAILS_TO_ROLL_BACK:
                    await self._roll_back(previous, version, f"route {_name(route)}: {reason}")
                    return
        if self.watch_state is not None:
            self.watch_state["result"] = "kept"

    async def unhealthy(self, route: RoutePlan) -> str | None:
        """Why a route looks degraded now, or None."""
        runtime = self.admin.reloader.runtime
        gate = runtime.gates.get(route.app) if route.app else None
        if gate is not None:
            return None if gate.state == BackendState.UP else f"app {gate.name} is {gate.state}"
        error_rate = getattr(runtime, "route_error_rate", None)  # 5xx share, with metrics
        if error_rate is not None:
            rate = error_rate(_name(route))
            if rate is not None and rate > 0.5:
                return f"{rate:.0%} of its responses are 5xx"
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(route.upstream_host, route.upstream_port),
                CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            return (f"upstream {route.upstream_host}:{route.upstream_port} refuses "
                    f"connections ({type(exc).__name__})")
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return None

    async def _roll_back(self, previous: str, version: int, reason: str) -> None:
        async with self.lock:
            file = self.admin.config_file
            assert file is not None
            current = file.read_bytes()
            write_config(file, previous)
            ok, why = await self.admin.reload()
            action = f"automatic rollback of version {version}"
            if not ok:
                write_config(file, current.decode())
                result = f"rollback failed: {why}"
            else:
                self.history.add(previous, "portico (watch)", action, etag_of(previous.encode()),
                                 diff(current.decode("utf-8", "replace"), previous, file.name))
                result = f"rolled back: {reason}"
            self.admin.reloader.announce(f"admin: config version {version} {result}")
            record(self.admin, None, action, str(file), {"ok": ok, "reason": reason},
                   before=etag_of(current), after=etag_of(previous.encode()),
                   actor="portico (watch)")
            if self.watch_state is not None:
                self.watch_state["result"] = result

    def versions(self, diffs: bool = True) -> list[dict[str, Any]]:
        """The kept versions, oldest first; without their diffs for the ``read`` scope
        (a diff may show a header value or an app's env)."""
        rows = [asdict(v) for v in self.history.versions()]
        if not diffs:
            for row in rows:
                del row["diff"]
        return rows


def changed_routes(before: list[RoutePlan], after: list[RoutePlan]) -> list[RoutePlan]:
    """The routes of ``after`` that are new or differ from their namesake in ``before``."""
    old = {(r.host, r.path): _comparable(r) for r in before}
    return [r for r in after if old.get((r.host, r.path)) != _comparable(r)]


def _comparable(route: RoutePlan) -> dict[str, Any]:
    data = asdict(route)
    data.pop("index", None)
    return data


def _name(route: RoutePlan) -> str:
    return f"{route.host or ''}{route.path}"


def write_config(file: Path, text: str) -> None:
    """Replace the file whole, keeping its mode; a reader sees the old or the new text."""
    fd, temporary = tempfile.mkstemp(prefix=f".{file.name}-", dir=file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        with contextlib.suppress(OSError):
            shutil.copymode(file, temporary)
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
