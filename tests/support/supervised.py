"""Helpers for tests of supervised apps: configs with tinyapp, `portico status`, waiting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.portico_proc import Portico

REPO = Path(__file__).parents[2]


TINY = REPO / "tests" / "support" / "apps" / "tinyapp.py"


SUPPORT_APPS = REPO / "tests" / "support" / "apps"


def tiny(name: str, *args: str, extra: str = "") -> str:
    argv = json.dumps(["{python}", str(TINY), "{port}", *args])
    return f"""
[[app]]
name = "{name}"
command = {argv}
{extra}

[[route]]
path = "/{name}"
app = "{name}"
"""


def config(*blocks: str) -> str:
    return '[server]\nlisten = ["http://127.0.0.1:0"]\ntick = 0.1\n' + "".join(blocks)


def status(proxy: Portico) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "portico", "status", "--json", "-c", str(proxy.config_path)],
        capture_output=True, text=True, timeout=20,
        env={**os.environ, "PORTICO_STATE_DIR": str(proxy.config_path.parent / "state")},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def app_status(proxy: Portico, name: str) -> dict[str, Any]:
    return next(app for app in status(proxy)["apps"] if app["name"] == name)


def wait_until(predicate: Callable[..., object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def run_to_exit(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "portico.toml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "portico", "run", "-c", str(path)], capture_output=True,
        text=True, timeout=60,
        env={**os.environ, "PORTICO_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"},
    )
