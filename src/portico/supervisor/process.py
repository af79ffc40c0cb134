"""One app process: the WSGI server command line, start with readiness, stop.

Each app runs in its own process group (a new session), so stopping it
reaches gunicorn's workers too and no child is left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from portico.config.schema import App


class AppStartError(Exception):
    def __init__(self, name: str, reason: str, stderr_tail: list[str]) -> None:
        self.name = name
        self.reason = reason
        self.stderr_tail = stderr_tail
        super().__init__(f"app {name!r} did not start: {reason}")


def default_server() -> str:
    return "waitress" if sys.platform == "win32" else "gunicorn"


def app_argv(app: App, proxy_address: str = "127.0.0.1") -> list[str]:
    """The command line that serves ``app``, trusting only portico's own address."""
    host, _, port = app.bind.rpartition(":")
    if app.command is not None:
        return [part.replace("{port}", port).replace("{host}", host) for part in app.command]
    assert app.wsgi is not None
    server = app.server or default_server()
    if server == "gunicorn":
        return [
            sys.executable, "-m", "gunicorn",
            "--worker-class", "gevent",
            "--workers", str(app.workers),
            "--bind", app.bind,
            "--forwarded-allow-ips", proxy_address,
            "--keep-alive", "5",
            "--access-logfile", "-",
            app.wsgi,
        ]
    return [
        sys.executable, "-m", "waitress",
        "--listen", app.bind,
        "--threads", str(max(4, app.workers * 2)),
        "--trusted-proxy", proxy_address,
        "--trusted-proxy-headers",
        "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port",
        app.wsgi,
    ]


class AppProcess:
    def __init__(self, app: App, base_dir: Path, log_dir: Path) -> None:
        self.app = app
        self.cwd = (base_dir / app.cwd).resolve() if app.cwd else base_dir
        self.log_path = log_dir / f"{app.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.app.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.cwd), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                app_argv(self.app),
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=sys.platform != "win32",
            )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        host, _, port = self.app.bind.rpartition(":")
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host.strip("[]")
        deadline = time.monotonic() + self.app.start_timeout
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise AppStartError(
                    self.app.name, f"exited with status {self.proc.returncode}", self.log_tail()
                )
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise AppStartError(
                        self.app.name,
                        f"nothing listening on {self.app.bind} after {self.app.start_timeout:g}s",
                        self.log_tail(),
                    ) from None
                await asyncio.sleep(0.05)
            else:
                writer.close()
                return

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return list(deque(log, maxlen=lines))
        except OSError:
            return []

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, wait ``grace`` seconds, then SIGKILL it."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))
            proc.wait(5)

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            if sys.platform == "win32":
                self.proc.send_signal(sig)
            else:
                os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
