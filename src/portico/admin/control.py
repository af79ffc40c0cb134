"""The control socket's address and its client; the ``[metrics] listen`` endpoint.

The socket itself is served by the admin API (admin/server.py): ``GET /status``,
``/api/...`` and ``/metrics``. On POSIX it is a Unix socket in the runtime directory
(admin/runtime.py; only the owner can reach it: mode 0600); on Windows a loopback TCP
port, written to a file of the same name with ``.port`` appended. ``control_request``
is the CLI's side of it (``portico status``, ``portico app ...``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from portico.admin.runtime import control_socket, instance_key

Snapshot = Callable[[], Awaitable[dict[str, Any]]]
# (method, path) -> (status, content type, body); None: not one of its paths
Actions = Callable[[str, str], Awaitable[tuple[int, str, bytes] | None]]
USE_UNIX = sys.platform != "win32"
REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           500: "Internal Server Error", 502: "Bad Gateway"}


def control_path(directory: Path, config_file: Path | None) -> Path:
    """One socket per config file, so several porticos can share a runtime directory."""
    return control_socket(directory, instance_key(config_file))


async def serve_http(host: str, port: int, actions: Actions) -> asyncio.Server:
    """``actions`` alone (no ``/status``) on a TCP address: ``[metrics] listen``."""
    return await asyncio.start_server(_handler(None, actions), host.strip("[]"), port)


def _handler(
    snapshot: Snapshot | None, actions: Actions | None
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass
            method, _, rest = line.decode("latin-1").partition(" ")
            target = rest.partition(" ")[0]
            answer = await actions(method, target) if actions is not None else None
            if answer is not None:
                code, kind, body = answer
            elif snapshot is not None and (method, target) == ("GET", "/status"):
                code, kind = 200, "application/json"
                body = json.dumps(await snapshot(), indent=2).encode() + b"\n"
            else:
                code, kind = 404, "application/json"
                body = b'{"error": "use GET /status"}\n'
            head = (f"HTTP/1.0 {code} {REASONS.get(code, 'Error')}\r\n"
                    f"Content-Type: {kind}\r\n").encode()
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


def remove_control(path: Path) -> None:
    for stale in (path, path.with_name(path.name + ".port")):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


async def fetch_status(path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """The running portico's status; OSError if none answers at ``path``."""
    _, body = await control_request(path, "GET", "/status", timeout)
    result: dict[str, Any] = json.loads(body)
    return result


async def control_request(
    path: Path, method: str, target: str, timeout: float = 5.0
) -> tuple[int, bytes]:
    """One request to the running portico at ``path``: (status, body); OSError if none
    answers, TimeoutError after ``timeout``."""
    async with asyncio.timeout(timeout):
        if USE_UNIX:
            reader, writer = await asyncio.open_unix_connection(str(path))
        else:
            port = int(path.with_name(path.name + ".port").read_text())
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"{method} {target} HTTP/1.0\r\nContent-Length: 0\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        code = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise OSError(f"not an HTTP answer: {head[:60]!r}") from None
    return code, body
