"""The installed wheel, not the source tree.

`make test` builds the wheel as a user would (sdist, then the wheel from it, compiled),
installs it with the apps extra into a venv of its own and names that venv in
PORTICO_WHEEL_VENV. These tests run that copy from a directory outside the checkout:
the Apache guide's example up, one request through, Ctrl-C, nothing left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import free_port
from tests.support.portico_proc import LISTENING
from tests.support.procs import alive, descendants, kill_leftovers

WHEEL_VENV = os.environ.get("PORTICO_WHEEL_VENV", "")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "apache-guide"

pytestmark = pytest.mark.skipif(
    not WHEEL_VENV,
    reason="PORTICO_WHEEL_VENV is unset: `make test` builds the wheel, installs it into "
    "build/wheel-venv and sets it",
)


@pytest.fixture
def venv() -> Path:
    return Path(WHEEL_VENV).resolve()


@pytest.fixture
def env(venv: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a user who installed the wheel: nothing points at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PORTICO_STATE_DIR"] = str(tmp_path / "state")
    return env


def test_the_wheel_is_installed_compiled(venv: Path, env: dict[str, str], tmp_path: Path) -> None:
    probe = "import portico; print(portico.__file__); print(portico.compiled())"
    found = subprocess.run([venv / "bin" / "python", "-c", probe], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    assert Path(found[0]).resolve().is_relative_to(venv), found
    assert found[1] == "True", "the wheel's request path is not compiled"
    version = subprocess.run([venv / "bin" / "portico", "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"portico \S+ \(compiled\)\n", version), version


class Run:
    """`portico run` from the wheel's venv, its output collected by a thread."""

    def __init__(self, argv: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.port = 0
        self.ready = threading.Event()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)
            match = LISTENING.search(line)
            if match and not self.port:
                self.port = int(match.group(3))
            if "portico ready:" in line:
                self.ready.set()
        self.ready.set()  # exited: the caller sees it and the log

    @property
    def log(self) -> str:
        return "".join(self.lines)


@pytest.fixture
def guide(tmp_path: Path) -> tuple[Path, int]:
    """A copy of examples/apache-guide outside the checkout, on free ports."""
    site = tmp_path / "apache-guide"
    shutil.copytree(EXAMPLE, site)
    config = site / "portico.toml"
    text = config.read_text()
    app_port = free_port()
    for fixed, free in (("127.0.0.1:8080", "127.0.0.1:0"), ("127.0.0.1:8000", f"127.0.0.1:{app_port}")):
        assert fixed in text, f"examples/apache-guide/portico.toml no longer uses {fixed}"
        text = text.replace(fixed, free)
    config.write_text(text)
    return site, app_port


@pytest.fixture
def started(venv: Path, env: dict[str, str], guide: tuple[Path, int]) -> Iterator[Run]:
    site, _ = guide
    run = Run([venv / "bin" / "portico", "run", "-c", "portico.toml"], site, env)
    children: set[int] = set()
    try:
        assert run.ready.wait(60), f"not ready after 60 s:\n{run.log}"
        assert run.proc.poll() is None, f"portico exited:\n{run.log}"
        children = descendants(run.proc.pid)
        yield run
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait(10)
        kill_leftovers(children)
        run.reader.join(10)
        assert run.proc.stdout is not None
        run.proc.stdout.close()


def test_the_apache_guide_example_runs_from_the_wheel(
    venv: Path, started: Run, guide: tuple[Path, int]
) -> None:
    children = descendants(started.proc.pid)
    servers = [Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") for pid in children]
    gunicorn = [argv for argv in servers if argv[1:3] == [b"-m", b"gunicorn"]]
    assert gunicorn, servers
    assert all(Path(os.fsdecode(argv[0])).is_relative_to(venv) for argv in gunicorn), gunicorn

    response = httpx.get(f"http://127.0.0.1:{started.port}/myapp/", timeout=10)
    assert response.status_code == 200, started.log
    assert "Hello from behind the proxy" in response.text

    started.proc.send_signal(signal.SIGINT)
    assert started.proc.wait(30) == 0, started.log
    assert not [pid for pid in children if alive(pid)], f"left running:\n{started.log}"
    assert "Traceback" not in started.log, started.log
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", guide[1]))  # the app's port is free again
