"""One run of one app: spawn it, know when it is ready, stop it without orphans.

Each app runs in its own process group (a new session on POSIX), so a stop
reaches gunicorn's or uvicorn's workers too; after the leader exits, the
group is swept with SIGKILL so no worker outlives it. On Linux the leader
also gets SIGTERM if portico itself dies (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from portico.config.plan import AppPlan
from portico.ports import bind_holder, foreign_listener
from portico.procfs import process_stats
from portico.supervisor.commands import app_argv, app_env, connect_host, split_bind
from portico.supervisor.health import probe
from portico.supervisor.logs import AppLog

READ_SIZE = 64 * 1024
GROUP_EXIT_WAIT = 5.0  # seconds a SIGKILLed process group may take to be gone


class AppStartError(Exception):
    def __init__(self, name: str, reason: str, output_tail: list[str]) -> None:
        self.name = name
        self.reason = reason
        self.stderr_tail = output_tail
        super().__init__(f"app {name!r} did not start: {reason}")


class AppProcess:
    def __init__(self, app: AppPlan, cwd: Path, log: AppLog) -> None:
        self.app = app
        self.cwd = cwd
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = time.monotonic()  # again at spawn; a refused start ran for 0 s
        self._pump: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def spawn(self) -> None:
        env = app_env(self.app.env, self.cwd, self.app)
        env.setdefault("PYTHONUNBUFFERED", "1")
        extra: dict[str, object] = {}
        if sys.platform == "win32":
            extra["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            extra["start_new_session"] = True
            if sys.platform.startswith("linux"):
                extra["preexec_fn"] = _die_with_parent
        argv = app_argv(self.app, doctor=True)
        if not self.cwd.is_dir():
            raise AppStartError(self.app.name, f"its cwd {self.cwd} is not a directory", [])
        holder = await asyncio.to_thread(bind_holder, *split_bind(self.app.bind))
        if holder is not None:
            raise AppStartError(
                self.app.name,
                f"{self.app.bind} is already in use by {holder}; stop it, or give the app "
                "another bind",
                [],
            )
        creating = asyncio.ensure_future(asyncio.create_subprocess_exec(
            *argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **extra,  # type: ignore[arg-type]
        ))
        try:
            self.proc = await asyncio.shield(creating)
        except asyncio.CancelledError:  # Ctrl-C during start-up: keep it, to be stopped
            with contextlib.suppress(OSError):
                self.proc = await creating
            raise
        except OSError as exc:
            raise AppStartError(
                self.app.name, f"cannot run {argv[0]!r}: {exc.strerror or exc}", []
            ) from None
        self.started_at = time.monotonic()
        self._pump = asyncio.get_running_loop().create_task(self._copy_output(self.proc))

    async def _copy_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while data := await proc.stdout.read(READ_SIZE):
            self.log.feed(data)

    async def wait_ready(self) -> None:
        """Until the app answers its health path (``/`` by default) below 500 and, on
        Linux, the sockets listening on its port are its own; AppStartError otherwise,
        within ``start_timeout``. The process is stopped before that is raised."""
        assert self.proc is not None
        app = self.app
        host, (_, port) = connect_host(app.bind), split_bind(app.bind)
        deadline = time.monotonic() + app.start_timeout
        exited = asyncio.ensure_future(self.proc.wait())
        last = "nothing listening"
        answer: asyncio.Future[str | None] | None = None
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    await self.stop()
                    raise AppStartError(
                        app.name,
                        f"not ready after {app.start_timeout:g}s (start_timeout): {last} "
                        f"on {app.bind}",
                        list(self.log.tail),
                    )
                answer = asyncio.ensure_future(
                    probe(host, port, app.health or "/", min(app.health_timeout, remaining))
                )
                await asyncio.wait({answer, exited}, return_when=asyncio.FIRST_COMPLETED)
                if exited.done():
                    answer.cancel()
                    await self._drain_output()
                    raise AppStartError(
                        app.name, f"exited with status {exited.result()}", list(self.log.tail)
                    )
                failure = answer.result()
                if failure is None:
                    if app.listener_check:
                        await self._check_listener_is_ours()
                    return
                last = failure
                await asyncio.wait({exited}, timeout=0.05)
        finally:
            exited.cancel()
            if answer is not None:
                answer.cancel()  # a cancelled wait leaves no probe behind

    async def _check_listener_is_ours(self) -> None:
        """A stranger listening on the port answered the probe: refuse the app."""
        assert self.proc is not None
        host, port = split_bind(self.app.bind)
        stranger = await asyncio.to_thread(foreign_listener, host, port, self.proc.pid)
        if stranger is not None:
            await self.stop()
            raise AppStartError(
                self.app.name,
                f"{self.app.bind} is served by {stranger}, which is not one of the app's "
                "processes; stop it, or give the app another bind",
                list(self.log.tail),
            )

    async def wait_exit(self) -> int:
        assert self.proc is not None
        code = await self.proc.wait()
        await self._sweep()  # orphaned workers
        await self._drain_output()
        return code

    async def stop(self, hurry: bool = False) -> None:
        """SIGTERM the process group, wait ``stop_timeout``, then SIGKILL it; with
        ``hurry`` (a second Ctrl-C), SIGKILL at once."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None and not hurry:
            self._signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), self.app.stop_timeout)
            except TimeoutError:
                self.log.line(f"portico: no exit {self.app.stop_timeout:g}s after SIGTERM; SIGKILL")
        self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))
        await proc.wait()
        await self._sweep()
        await self._drain_output()

    def kill(self) -> None:
        """SIGKILL the process group now (a second Ctrl-C); stop() or wait_exit() reaps."""
        if self.proc is not None:
            self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))

    async def _sweep(self) -> None:
        """SIGKILL what is left of the group and wait, up to GROUP_EXIT_WAIT, until it is
        gone: a dying worker may hold the app's port a moment longer, and a restart would
        find it bound."""
        self._signal_group(getattr(signal, "SIGKILL", signal.SIGTERM))
        if sys.platform == "win32" or self.proc is None:
            return
        deadline = time.monotonic() + GROUP_EXIT_WAIT
        while time.monotonic() < deadline and await asyncio.to_thread(_group_alive, self.proc.pid):
            await asyncio.sleep(0.02)

    async def _drain_output(self) -> None:
        if self._pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), 2.0)

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        try:
            if sys.platform == "win32":
                if self.proc.returncode is None:
                    self.proc.send_signal(sig)
            else:
                os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs. On Linux a zombie (dead, its
    sockets closed, waiting for whoever adopted it to reap it) does not count."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not sys.platform.startswith("linux"):
        return True
    for fields in process_stats():
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM if portico dies (Linux ``prctl``)."""
    PR_SET_PDEATHSIG = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
