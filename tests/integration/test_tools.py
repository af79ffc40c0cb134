"""The repository's own tools still run: a refactor must not leave them behind.

``make fuzz`` and ``make bench`` are not part of ``make test`` (minutes each);
these run each tool for a moment so a broken import or harness fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str) -> str:
    result = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_request_path_fuzzer_runs_and_finds_nothing() -> None:
    out = run("fuzz/request_path.py", "--seconds", "2")
    assert "all well-formed" in out and "no exception" in out


def test_the_hot_path_timer_runs() -> None:
    out = run("bench/hotpath.py", "2000")
    assert re.search(r"[\d.]+ us per proxied request", out)
