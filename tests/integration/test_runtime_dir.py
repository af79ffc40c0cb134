"""The runtime directory is trusted only when it is the user's own; one portico per config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.portico_proc import StartPortico
from tests.support.status import portico_status, proxy_only


def run_portico(*args: str, state: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTICO_STATE_DIR": str(state), "COLUMNS": "300"}
    env.pop("PORTICO_RUNTIME_DIR", None)
    return subprocess.run([sys.executable, "-m", "portico", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=cwd)


def forged_record(directory: Path, key: str, pid: int, control: Path) -> None:
    record = {"key": key, "pid": pid, "config": None, "listen": [], "started": 0.0,
              "control": str(control), "logs": str(directory)}
    (directory / f"{key}.json").write_text(json.dumps(record))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="making a directory another user owns takes root")
def test_a_runtime_directory_of_another_user_is_refused_and_nothing_in_it_touched(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    directory = state / "run"
    directory.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    forged_record(directory, "x-00000000", dead_pid(), victim)
    os.chown(directory, 65534, 65534)  # as if another user made it first

    result = portico_status(state)
    assert result.returncode == 1
    assert f"{directory} belongs to uid 65534" in result.stderr
    assert victim.read_text() == "keep me"


def test_a_symlinked_runtime_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (state / "run").symlink_to(tmp_path / "elsewhere")
    result = portico_status(state)
    assert result.returncode == 1 and "is not a directory" in result.stderr


def test_a_stale_record_removes_only_its_own_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    directory = state / "run"
    directory.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    forged_record(directory, "x-00000000", dead_pid(), victim)  # its "control" is the victim
    (directory / "x-00000000.sock").write_text("")
    forged_record(directory, "y-11111111", dead_pid(), victim)
    (directory / "y-11111111.json").rename(directory / "renamed.json")  # key and name differ

    result = portico_status(state)
    assert result.returncode == 1 and "holds no live instance" in result.stderr
    assert victim.read_text() == "keep me"
    assert not (directory / "x-00000000.json").exists()
    assert not (directory / "x-00000000.sock").exists()
    assert (directory / "renamed.json").exists()  # not a record of this directory's: left


def test_a_second_run_of_the_same_config_is_refused(start_portico: StartPortico) -> None:
    proxy = start_portico(proxy_only())
    second = run_portico("run", "-c", str(proxy.config_path), state=proxy.state_dir,
                         cwd=proxy.config_path.parent)
    assert second.returncode == 1
    assert f"already served by portico pid {proxy.pid}" in second.stderr
    assert f"kill -HUP {proxy.pid}" in second.stderr
    assert proxy.proc.poll() is None
