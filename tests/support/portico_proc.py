"""A real ``portico run`` process on an ephemeral port, ready when it says so."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Protocol

LISTENING = re.compile(r"listening on (https?)://([^\s]+):(\d+)")


class Portico:
    def __init__(
        self, config: str, tmp: Path, name: str = "portico.toml", wrapper: list[str] | None = None,
        state: Path | None = None,
    ) -> None:
        self.config_path = tmp / name
        self.config_path.write_text(config)
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self.port = 0
        self.host = "127.0.0.1"
        self.https_port = 0
        self.state_dir = state or tmp / "state"  # also holds the runtime directory (run/)
        env = {**os.environ, "PORTICO_STATE_DIR": str(self.state_dir), "COLUMNS": "200"}
        env.pop("PORTICO_RUNTIME_DIR", None)  # the one under the state dir, this test's own
        self.proc = subprocess.Popen(
            [*(wrapper or []), sys.executable, "-m", "portico", "run", "-c", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self._ready.wait(30):
            self.kill()
            raise RuntimeError("portico did not start:\n" + "".join(self.stderr_lines))
        if self.proc.poll() is not None:
            raise RuntimeError("portico exited:\n" + "".join(self.stderr_lines))

    def _read(self, stream: object, is_err: bool) -> None:
        for line in stream:  # type: ignore[attr-defined]
            (self.stderr_lines if is_err else self.stdout_lines).append(line)
            match = LISTENING.search(line) if is_err else None
            if match and match.group(1) == "http" and not self.port:
                self.host = match.group(2)
                self.port = int(match.group(3))
            elif match and not self.https_port:
                self.https_port = int(match.group(3))
            if is_err and "portico ready:" in line:
                self._ready.set()
        self._ready.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def log_text(self) -> str:
        return "".join(self.stderr_lines) + "".join(self.stdout_lines)

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log_text():
                return True
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            self._close_pipes()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for reader in self._readers:
            reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class StartPortico(Protocol):
    """The ``start_portico`` fixture: a started portico, stopped after the test."""

    def __call__(self, config: str, wrapper: list[str] | None = None) -> Portico: ...
