"""Helpers for `portico status` tests: run it against a state directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.supervised import config


def portico_status(
    state: Path, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PORTICO_STATE_DIR": str(state), "COLUMNS": "300"}
    env.pop("PORTICO_RUNTIME_DIR", None)
    return subprocess.run([sys.executable, "-m", "portico", "status", *args],
                          capture_output=True, text=True, timeout=30, env=env, cwd=cwd)


def status_json(state: Path, *args: str, cwd: Path | None = None) -> dict[str, Any]:
    result = portico_status(state, "--json", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def proxy_only() -> str:
    return config('[[route]]\npath = "/x"\nupstream = "http://127.0.0.1:9/"\n')
