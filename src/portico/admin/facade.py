"""What the admin API reads and acts on: one object over the running portico's parts.

The API (admin/api.py) and the UI (admin/ui/) see only this, never the supervisor,
the reloader or the listeners themselves. Reads are cheap and never block the loop.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from portico.admin.plan import AdminPlan
from portico.config.backends import BackendPlan

if TYPE_CHECKING:
    from portico.server.reload import Reloader


class AppActions(Protocol):
    """App process control: the Supervisor's public actions (supervisor/supervisor.py)."""

    async def restart_app(self, name: str) -> None: ...
    async def stop_app(self, name: str) -> None: ...
    async def start_app(self, name: str) -> None: ...
    def apps_status(self) -> list[dict[str, Any]]: ...


class BackendDrains(Protocol):
    """Backend drain/enable by address (server/backend_drain.py's ``Drains``): LookupError for an
    unknown address, ValueError when draining would empty a route."""

    async def drain(self, address: str) -> dict[str, Any]: ...
    async def enable(self, address: str) -> dict[str, Any]: ...


class UnknownApp(LookupError):
    """No [[app]] of that name."""


@dataclass
class AdminContext:
    """The running portico, as the admin API sees it."""

    snapshot: Callable[[], Awaitable[dict[str, Any]]]  # GET /status's JSON
    reloader: Reloader
    apps: AppActions
    admin: AdminPlan
    state_dir: Path  # this instance's admin state: credentials, history, audit log
    key: str  # the instance key (admin/runtime.py)
    started: float = field(default_factory=time.time)
    # Set by the server: open the loopback listener `portico ui` uses; its port.
    open_loopback: Callable[[], Awaitable[int]] | None = None
    last_reload_error: str | None = None
    # Prometheus text for GET /metrics; None (or a None answer) while [metrics] is off.
    metrics: Callable[[], bytes | None] | None = None
    # The backends drained by the API (server/backend_drain.py); None: this portico cannot.
    drains: BackendDrains | None = None

    @property
    def config_file(self) -> Path | None:
        return self.reloader.run.config_file

    def config_text(self) -> bytes:
        """The config file as it is on disk now (an edit by hand counts: ETag)."""
        if self.config_file is None:
            from importlib import resources  # config/load.py's, without its pydantic

            return resources.files("portico.config").joinpath("default.toml").read_bytes()
        return self.config_file.read_bytes()

    async def reload(self) -> tuple[bool, str | None]:
        """Read the config file again (SIGHUP's path); (put in place, why not)."""
        said: list[str] = []
        announce = self.reloader.announce

        def capture(line: str) -> None:
            said.append(line)
            announce(line)

        self.reloader.announce = capture
        try:
            ok = await self.reloader.reload_now()
        finally:
            self.reloader.announce = announce
        refused = next((line for line in said if line.startswith("reload")), None)
        error = None if ok else (refused or (said[-1] if said else "reload refused"))
        self.last_reload_error = error
        return ok, error

    def routes(self) -> list[dict[str, Any]]:
        run = self.reloader.run
        gateway = self.reloader.runtime.serving
        rows = []
        for route, spec in zip(gateway.routes.routes, run.serving.routes, strict=True):
            gate = route.backend.gate
            rows.append({
                "route": route.label,
                "index": spec.index,
                "path": spec.path,
                "host": spec.host,
                "app": spec.app,
                "upstream": _url(spec.backends[0], spec.base_path),
                "upstreams": [_url(backend, spec.base_path) for backend in spec.backends],
                "state": str(gate.state) if gate else None,
                "preserve_path": spec.preserve_path,
                "preserve_host": spec.preserve_host,
                "request_headers": {"set": sorted(spec.request_headers.set),
                                    "add": sorted(spec.request_headers.add),
                                    "remove": spec.request_headers.remove},
                "response_headers": {"set": sorted(spec.response_headers.set),
                                     "add": sorted(spec.response_headers.add),
                                     "remove": spec.response_headers.remove},
            })
        return rows

    def backends(self) -> list[dict[str, Any]]:
        """Each backend of each route and its state: an app's gate state while it is not
        up, else up or down and why (health checks, failures, drained by the API).
        ``address`` (host:port) is what drain and enable take."""
        from portico.server.backend_drain import route_backends
        from portico.server.health import backend_rows

        gateway = self.reloader.runtime.serving
        rows = []
        for route, members, backends in zip(gateway.routes.routes, backend_rows(gateway),
                                            route_backends(gateway), strict=True):
            for member, backend in zip(members, backends, strict=True):
                gate = backend.gate
                rows.append({
                    "route": route.label,
                    "backend": member["address"],
                    "address": f"{backend.host}:{backend.port}",
                    "app": gate.name if gate else None,
                    "state": (str(gate.state) if gate is not None and not gate.up
                              else member["state"]),
                    "why": member["why"],
                    "drained": backend.drained,
                    "tls": backend.tls is not None,
                })
        return rows


def etag_of(text: bytes) -> str:
    return '"' + hashlib.sha256(text).hexdigest()[:32] + '"'


def admin_state_dir(state_dir: Path, key: str) -> Path:
    """``STATE/admin/KEY``: credentials, tokens, config history, audit log (0700)."""
    path = state_dir / "admin" / key
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        path.chmod(0o700)
    return path


def _url(backend: BackendPlan, base_path: str) -> str:
    return f"{backend.scheme}://{backend.host}:{backend.port}{base_path}"
