"""Active health checks: one probe loop per (address, check), in the main process.

A ``Check`` is what ``[route.health]`` asks; its verdict for one address is a
``CheckState``, kept in the ``UpstreamPool`` (``pool.check_state``) so that it
outlives a reload that keeps both the address and the check, and starts fresh
when either changes. Two routes that name the same address with the same check
share one state and one probe loop; with different checks, each has its own.
The ``Prober`` runs the loops where the apps are supervised and sends every
verdict on (to the worker processes, over the channel: ``server/channel.py``).
Each probe is a plain HTTP/1.1 GET on a fresh connection, ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from portico.upstream.backend import Backend, Key

MAX_PROBE_ANSWER: Final = 64 * 1024  # bytes of a probe's answer read, at most


@dataclass(frozen=True)
class Check:
    path: str
    interval: float
    timeout: float
    expect_status: tuple[int, ...] = ()  # empty: any 2xx or 3xx
    expect_body: str | None = None
    passes: int = 2
    fails: int = 3
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def ident(self) -> str:
        """A short name for the check, the same in every process (the channel's)."""
        return hashlib.blake2b(repr(self).encode(), digest_size=6).hexdigest()


class CheckState:
    """One address's verdict under one check: up until ``fails`` probes fail in a row,
    then down until ``passes`` pass in a row (rise/fall: one bad probe is no flap)."""

    __slots__ = ("check", "checked_at", "probes", "reason", "streak", "up")

    def __init__(self, check: Check) -> None:
        self.check = check
        self.up = True
        self.reason = ""  # why the last probe failed
        self.streak = 0  # probes in a row that disagree with ``up``
        self.checked_at = 0.0  # wall time of the last probe (0: none yet)
        self.probes = 0

    def record(self, passed: bool, reason: str, at: float) -> None:
        self.probes += 1
        self.checked_at = at
        if not passed:
            self.reason = reason  # kept while down, until it is up again
        if passed == self.up:
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= (self.check.passes if passed else self.check.fails):
            self.up, self.streak = passed, 0
            if passed:
                self.reason = ""


Verdict = tuple[Key, str, bool, str, float]  # address, check ident, up, reason, checked_at


async def probe(backend: Backend, check: Check) -> tuple[bool, str]:
    """One probe of ``backend``: (passed, why not)."""
    try:
        async with asyncio.timeout(check.timeout):
            return await _probe(backend, check)
    except TimeoutError:
        return False, f"no answer within {check.timeout:g}s"
    except OSError as exc:
        return False, f"cannot connect: {exc.strerror or exc}"


async def _probe(backend: Backend, check: Check) -> tuple[bool, str]:
    host, port = backend.address or (backend.host, backend.port)
    reader, writer = await asyncio.open_connection(
        host, port, ssl=backend.tls, server_hostname=backend.host if backend.tls else None)
    try:
        names = {name.lower() for name, _ in check.headers}
        fields = [] if "host" in names else [f"Host: {backend.authority.decode()}"]
        fields += [f"{name}: {value}" for name, value in check.headers]
        fields += ["User-Agent: portico-health", "Connection: close"]
        head = f"GET {check.path} HTTP/1.1\r\n" + "".join(f"{f}\r\n" for f in fields) + "\r\n"
        writer.write(head.encode("latin-1"))
        answer = await reader.read(MAX_PROBE_ANSWER)
        while len(answer) < MAX_PROBE_ANSWER and (more := await reader.read(65536)):
            answer += more
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return judge(answer, check)


def judge(answer: bytes, check: Check) -> tuple[bool, str]:
    """Whether a probe's answer passes ``check``."""
    head, _, body = answer.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return False, "not an HTTP answer"
    status = int(parts[1])
    passed = status in check.expect_status if check.expect_status else 200 <= status < 400
    if not passed:
        return False, f"health check answered {status}"
    if check.expect_body is not None and check.expect_body.encode() not in body:
        return False, f"health check body lacks {check.expect_body!r}"
    return True, ""


class Prober:
    """The probe loops of the serving gateway's checks (``follow`` it after each reload);
    ``tell`` gets each verdict."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tell: Callable[[Verdict], None]) -> None:
        self.loop = loop
        self.tell = tell
        self._loops: dict[tuple[Key, str], asyncio.Task[None]] = {}

    def follow(self, checked: list[tuple[Backend, CheckState]]) -> None:
        """Probe exactly these: new ones start, unchanged ones go on, gone ones stop."""
        wanted = {(backend.key, state.check.ident): (backend, state)
                  for backend, state in checked}
        for key in [key for key in self._loops if key not in wanted]:
            self._loops.pop(key).cancel()
        for key, (backend, state) in wanted.items():
            if key not in self._loops:
                self._loops[key] = self.loop.create_task(self._run(backend, state))

    def stop(self) -> None:
        for task in self._loops.values():
            task.cancel()
        self._loops.clear()

    async def _run(self, backend: Backend, state: CheckState) -> None:
        check = state.check
        while True:
            passed, reason = await probe(backend, check)
            state.record(passed, reason, time.time())
            self.tell((backend.key, check.ident, state.up, state.reason, state.checked_at))
            await asyncio.sleep(check.interval)
