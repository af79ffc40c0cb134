"""``portico service``: a systemd unit checked by systemd itself; the Windows lines, as text."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from portico.service.systemd import ServiceSpec, unit_text
from portico.service.windows import _quote, nssm_commands

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "examples" / "apache-guide" / "portico.toml"


def portico(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portico", *args], capture_output=True,
                          text=True, timeout=30, env={**os.environ, "COLUMNS": "300"})


def test_unit_runs_this_config_and_lets_portico_drain() -> None:
    result = portico("service", "print", "-c", str(EXAMPLE), "--name", "myapp-proxy", "--user", "www-data")
    assert result.returncode == 0, result.stderr
    unit = result.stdout
    assert f"ExecStart={sys.executable} -m portico run -c {EXAMPLE}" in unit
    assert f"WorkingDirectory={EXAMPLE.parent}" in unit
    assert "KillMode=mixed" in unit and "Restart=on-failure" in unit and "User=www-data" in unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert "TimeoutStopSec=50" in unit  # drain 30 s + the app's 10 s stop + 10 s slack
    assert "StateDirectory=myapp-proxy" in unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    result = portico("service", "install", "-c", str(EXAMPLE), "--name", "portico-test",
                     "--unit-dir", str(tmp_path), "--no-start")
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "portico-test.service"
    assert unit.read_text() == unit_text(ServiceSpec("portico-test", EXAMPLE, stop_timeout=50))
    assert "systemctl enable --now portico-test.service" in result.stdout  # printed, not run
    verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    problems = [line for line in verify.stderr.splitlines() if "portico-test.service" in line]
    assert verify.returncode == 0 and not problems, verify.stderr

    removed = portico("service", "uninstall", "--name", "portico-test", "--unit-dir", str(tmp_path),
                      "--no-stop")
    assert removed.returncode == 0 and not unit.exists()


def test_windows_service_is_defined_with_nssm() -> None:
    spec = ServiceSpec("portico", Path("C:/srv/my app/portico.toml"),
                       python="C:\\Python311\\python.exe", stop_timeout=50)
    commands = nssm_commands(spec)
    assert commands[0] == ["nssm", "install", "portico", "C:\\Python311\\python.exe",
                           '-m portico run -c "C:/srv/my app/portico.toml"']
    assert ["nssm", "set", "portico", "AppStopMethodConsole", "50000"] in commands
    assert ["nssm", "set", "portico", "AppExit", "Default", "Restart"] in commands
    assert commands[-1] == ["nssm", "start", "portico"]


@pytest.mark.parametrize(("arg", "quoted"), [
    ("plain", "plain"),
    ("two words", '"two words"'),
    ('say "hi"', '"say \\"hi\\""'),
    ("C:\\dir with space\\", '"C:\\dir with space\\\\"'),
])
def test_windows_argument_quoting(arg: str, quoted: str) -> None:
    assert _quote(arg) == quoted
    assert subprocess.list2cmdline([arg]) == quoted  # the standard library agrees
