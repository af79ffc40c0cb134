"""The control socket: a running portico answers ``GET /status`` with JSON.

On POSIX it is a Unix socket in the runtime directory (admin/runtime.py;
only the owner can reach it: mode 0600); on Windows a loopback TCP port, written to a file of
the same name with ``.port`` appended. It speaks just enough HTTP/1.0 that
``curl --unix-socket`` works too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from portico.admin.runtime import control_socket, instance_key

Snapshot = Callable[[], Awaitable[dict[str, Any]]]
USE_UNIX = sys.platform != "win32"


def control_path(directory: Path, config_file: Path | None) -> Path:
    """One socket per config file, so several porticos can share a runtime directory."""
    return control_socket(directory, instance_key(config_file))


async def serve_control(path: Path, snapshot: Snapshot) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass
            if line.split(b" ")[:2] == [b"GET", b"/status"]:
                body = json.dumps(await snapshot(), indent=2).encode() + b"\n"
                head = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
            else:
                body = b'{"error": "use GET /status"}\n'
                head = b"HTTP/1.0 404 Not Found\r\nContent-Type: application/json\r\n"
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    path.parent.mkdir(parents=True, exist_ok=True)
    if USE_UNIX:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old_umask = os.umask(0o177)
        try:
            return await asyncio.start_unix_server(handle, path=str(path))
        finally:
            os.umask(old_umask)
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path.with_name(path.name + ".port").write_text(str(port))
    return server


def remove_control(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".port")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


async def fetch_status(path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """The running portico's status; OSError if none answers at ``path``."""
    async with asyncio.timeout(timeout):
        if USE_UNIX:
            reader, writer = await asyncio.open_unix_connection(str(path))
        else:
            port = int(path.with_name(path.name + ".port").read_text())
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /status HTTP/1.0\r\n\r\n")
        data = await reader.read()
        writer.close()
    _, _, body = data.partition(b"\r\n\r\n")
    result: dict[str, Any] = json.loads(body)
    return result
