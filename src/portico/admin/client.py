"""Call a running portico's admin API over its control socket (what the CLI uses)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from portico.admin.control import USE_UNIX


class ApiAnswer:
    def __init__(self, status: int, headers: dict[str, str], body: Any) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> str:
        if isinstance(self.body, dict):
            message = str(self.body.get("error", self.body))
            for problem in self.body.get("errors", []) or []:
                where = problem.get("key") or "(file)"
                message += f"\n  {where}: {problem.get('message')}"
            return message
        return str(self.body)


async def call(
    control: Path, method: str, path: str, body: Any = None,
    headers: dict[str, str] | None = None, timeout: float = 60.0,
) -> ApiAnswer:
    """One request; OSError if nothing answers at ``control``."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", "Connection: close",
             f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    async with asyncio.timeout(timeout):
        if USE_UNIX:
            reader, writer = await asyncio.open_unix_connection(str(control))
        else:
            port = int(control.with_name(control.name + ".port").read_text())
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        data = await reader.read()
        writer.close()
    head, _, raw = data.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    found = {}
    for field in fields:
        name, _, value = field.partition(":")
        found[name.strip().lower()] = value.strip()
    if found.get("transfer-encoding") == "chunked":
        raw = _dechunk(raw)
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return ApiAnswer(int(status_line.split(" ")[1]), found, parsed)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out
