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


def test_the_budget_is_read_off_the_measured_curve() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from budget import budget
    finally:
        sys.path.remove(str(ROOT / "bench"))
    # (user us added beyond the floor, ratio to nginx), as bench/budget.py measures them
    curve = [(0.0, 1.01), (1.17, 0.74), (2.09, 0.62)]
    allowed = budget(curve, 0.80)
    assert allowed is not None and abs(allowed - 0.91) < 0.01
    assert budget([(0.0, 0.70), (1.0, 0.50)], 0.80) == 0.0  # not even the bare floor
    assert budget([(0.0, 1.00), (6.0, 0.90)], 0.80) is None  # above it throughout
