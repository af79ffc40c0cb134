"""Does the app answer: one probe (readiness), and probing until it stops (liveness).

A probe is a real HTTP GET on one fresh connection (``Connection: close``),
made from the supervisor. A connect alone proves nothing: gunicorn's master
accepts connections (into its backlog) while its workers fail to boot, and a
hung app accepts and never answers. So a probe counts only when a status line
comes back below 500 within the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from portico.config.plan import AppPlan
from portico.supervisor.commands import connect_host, split_bind


async def until_unhealthy(app: AppPlan, note: Callable[[str], None]) -> str:
    """Probe ``app`` every ``health_interval``; once ``unhealthy_after`` probes in a row
    failed, return why. Each failure is ``note``d (the app's log)."""
    host, (_, port) = connect_host(app.bind), split_bind(app.bind)
    path = app.health or "/"
    failures = 0
    while True:
        await asyncio.sleep(app.health_interval)
        failure = await probe(host, port, path, app.health_timeout)
        if failure is None:
            failures = 0
            continue
        failures += 1
        note(f"portico: health check {failures} of {app.unhealthy_after} failed: {failure}")
        if failures >= app.unhealthy_after:
            return f"health check: {failure} ({failures} in a row)"


async def probe(host: str, port: int, path: str, timeout: float) -> str | None:
    """GET ``path``; None when it answered below 500, else what went wrong, worded
    to follow "health check: " (e.g. "no answer within 5s")."""
    try:
        async with asyncio.timeout(timeout):
            status = await _status_of_get(host, port, path)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except ConnectionRefusedError:
        return "nothing listening"
    except asyncio.IncompleteReadError:
        return "connection closed without an answer"
    except OSError as exc:
        return f"connection failed: {exc.strerror or exc}"
    except (ValueError, asyncio.LimitOverrunError):
        return "the answer is not HTTP"
    if status >= 500:
        return f"GET {path} answered {status}"
    return None


async def _status_of_get(host: str, port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n"
            "User-Agent: portico-health\r\n\r\n".encode("latin-1")
        )
        status_line = await reader.readuntil(b"\n")  # IncompleteReadError: closed first
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise ValueError("not an HTTP response")
        return int(parts[1])
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
