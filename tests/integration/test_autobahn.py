"""The Autobahn|Testsuite cases (run by kosoku, a Python 3 runner of the same case files)
against a ``websockets`` echo server, directly and through portico: every case must end
the same way through portico as without it. A subset runs in make test; the whole suite
is ``make autobahn`` (marked long)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.portico_proc import Portico

ROOT = Path(__file__).parents[2]
KOSOKU = Path(sys.executable).parent / "kosoku"
# Framing, pings, reserved bits and opcodes, fragments, UTF-8 basics, closing: 40 cases.
SUBSET = ["1.1.*", "2.*", "3.*", "4.1.*", "5.1*", "6.1.*", "7.1.*"]
Outcome = tuple[str, str]  # (behavior, behaviorClose)


class Rig:
    def __init__(self, echo_port: int, proxy: Portico) -> None:
        self.echo_port = echo_port
        self.proxy = proxy


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The echo server and a portico in front of it, started side by side."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.apps.wsecho", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    portico = None
    try:
        portico = Portico(f"""
[server]
listen = ["http://127.0.0.1:0"]
access_log = "off"

[server.limits]
max_body_size = "64MiB"

[[route]]
path = "/"
upstream = "http://127.0.0.1:{port}/"
""", tmp_path_factory.mktemp("autobahn"))
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        yield Rig(port, portico)
    finally:
        if portico is not None:
            portico.stop()
            assert "Traceback" not in portico.log_text(), portico.log_text()
        proc.terminate()
        proc.wait(10)


def run_cases(port: int, cases: list[str], out: Path) -> dict[str, Outcome]:
    selection = [arg for case in cases
                 for arg in (("-x", case[1:]) if case.startswith("!") else ("-i", case))]
    # Exit status 1 says some case failed (by the server's own behaviour): compared below.
    run = subprocess.run([str(KOSOKU), *selection, "-p", "4", "-o", str(out),
                          f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=3600)
    assert (out / "index.json").exists(), run.stderr
    [results] = json.loads((out / "index.json").read_text()).values()
    return {case: (result["behavior"], result["behaviorClose"])
            for case, result in results.items()}


def assert_same_through_portico(rig: Rig, cases: list[str], out: Path) -> None:
    direct = run_cases(rig.echo_port, cases, out / "direct")
    through = run_cases(rig.proxy.port, cases, out / "portico")
    assert direct.keys() == through.keys() and direct
    differ = {case: (direct[case], through[case]) for case in direct
              if direct[case] != through[case]}
    assert not differ, differ


@pytest.mark.skipif(not KOSOKU.exists(), reason="kosoku (PyPI, the test extra) is not installed")
def test_autobahn_subset_same_through_portico(rig: Rig, tmp_path: Path) -> None:
    assert_same_through_portico(rig, SUBSET, tmp_path)


@pytest.mark.long
@pytest.mark.skipif(not KOSOKU.exists(), reason="kosoku (PyPI, the test extra) is not installed")
def test_autobahn_full_suite_same_through_portico(rig: Rig, tmp_path: Path) -> None:
    # AUTOBAHN_CASES="*,!9.*" narrows it ("!" excludes); the whole suite takes long.
    cases = os.environ.get("AUTOBAHN_CASES", "*").split(",")
    assert_same_through_portico(rig, cases, tmp_path)
