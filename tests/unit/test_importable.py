"""config/importable.py: a probe that hangs is killed with whatever it started. Each
case runs the real probe (a child of this interpreter) in a directory of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from portico.config import importable
from portico.config.importable import AppToProbe, import_problems
from portico.config.schema import App


def problems_of(directory: Path, target: str) -> list[str]:
    app = App(name="a", wsgi=target, server="waitress")
    found = import_problems([AppToProbe(0, app, directory)], "portico.toml",
                            modules=True, deep=False)
    return [str(problem) for problem in found]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_hung_probe_is_killed_with_the_grandchild_that_holds_its_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing the parent package starts a process that inherits the probe's stdout,
    then hangs: the probe, and that process, are killed at the timeout."""
    (tmp_path / "hangs").mkdir()
    (tmp_path / "hangs" / "__init__.py").write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import os, time; "
        "open(\"grandchild.pid\", \"w\").write(str(os.getpid())); time.sleep(60)'])\n"
        "time.sleep(60)\n")
    (tmp_path / "hangs" / "app.py").write_text("app = 1\n")
    monkeypatch.setattr(importable, "PROBE_TIMEOUT", 2.0)
    started = time.monotonic()
    try:
        found = problems_of(tmp_path, "hangs.app:app")
        took = time.monotonic() - started
        assert len(found) == 1 and "took over 2s" in found[0], found
        assert took < 2.0 + importable.KILLED_WAIT, took
        pid = int((tmp_path / "grandchild.pid").read_text())
        deadline = time.monotonic() + 5
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid)
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int((tmp_path / "grandchild.pid").read_text()), signal.SIGKILL)
