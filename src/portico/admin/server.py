"""Open the admin server's sockets: the control socket always, TCP only when asked.

- The control socket (admin/control.py's path): mode 0600, the owner's only; on
  Windows a loopback port written beside it, as before.
- ``[admin] listen``: a TCP listener (TLS when ``https://``), every request checked
  by the guard (admin/guard.py).
- ``portico ui``: on demand (``POST /api/ui-session``), a loopback listener on a free
  port, checked the same way, for a browser signed in by a one-time link.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from portico.admin.auth import has_password, load_tokens
from portico.admin.bridge import AdminServer, ASGIApp, Bounds, Transport
from portico.admin.facade import AdminContext

USE_UNIX = sys.platform != "win32"


@dataclass
class AdminServers:
    server: AdminServer
    sockets: list[asyncio.Server] = field(default_factory=list)
    tcp_url: str | None = None
    notes: list[str] = field(default_factory=list)  # for the terminal, at start

    def close(self) -> None:
        for server in self.sockets:
            server.close()


def _load(admin: AdminContext) -> ASGIApp:
    from portico.admin.api import create_app  # Starlette: imported at the first request

    return create_app(admin)


async def serve_admin(control_file: Path, admin: AdminContext) -> AdminServers:
    plan = admin.admin
    server = AdminServer(lambda: _load(admin), Bounds(plan.max_body_size, plan.request_timeout),
                         admin.snapshot)
    servers = AdminServers(server)
    control_file.parent.mkdir(parents=True, exist_ok=True)
    trusted = server.handler(Transport("unix"))
    if USE_UNIX:
        with contextlib.suppress(FileNotFoundError):
            control_file.unlink()
        old_umask = os.umask(0o177)
        try:
            servers.sockets.append(await asyncio.start_unix_server(trusted,
                                                                   path=str(control_file)))
        finally:
            os.umask(old_umask)
    else:  # Windows: the control port as before (admin/control.py)
        control = await asyncio.start_server(trusted, "127.0.0.1", 0)
        port = control.sockets[0].getsockname()[1]
        control_file.with_name(control_file.name + ".port").write_text(str(port))
        servers.sockets.append(control)
    if plan.listen:
        parts = urlsplit(plan.listen)
        context = None
        if parts.scheme == "https":
            assert plan.cert is not None and plan.key is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(plan.cert, plan.key)
            if plan.client_ca is not None:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(plan.client_ca)
        host = (parts.hostname or "127.0.0.1").strip("[]")
        port = parts.port or 0
        tcp = await asyncio.start_server(
            server.handler(Transport("tcp", parts.scheme, port)), host, port, ssl=context)
        servers.sockets.append(tcp)
        servers.tcp_url = plan.listen
        if not has_password(admin.state_dir) and not load_tokens(admin.state_dir):
            servers.notes.append("no admin password or API token is set yet: every TCP "
                                 "request is refused until `portico admin passwd` (or use "
                                 "`portico ui`)")
    loopback: list[int] = []

    async def open_loopback() -> int:
        if not loopback:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            ui = await asyncio.start_server(server.handler(Transport("tcp", "http", port)),
                                            sock=sock)
            servers.sockets.append(ui)
            loopback.append(port)
        return loopback[0]

    admin.open_loopback = open_loopback
    return servers
