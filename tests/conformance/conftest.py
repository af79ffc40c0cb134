"""The hardening catalogue (shared/reference/proxy-hardening-cases.md) as tests.

One portico with short timeouts in front of one recording upstream serves
the whole directory (no upstream pooling, so each test's upstream script
answers its own requests; the pooling cases start their own portico). Test names carry the catalogue number (``test_a01_...``
or a ``[A01-...]`` parameter id), and the run ends with pass counts per
catalogue section.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

from tests.support.client import Reply, read_until_quiet
from tests.support.harness import ProxyHarness
from tests.support.portico_proc import Portico
from tests.support.recorder import Recorder, ok_handler

SECTIONS = {
    "A": "Framing and smuggling",
    "B": "Header syntax",
    "C": "Request target and Host",
    "D": "Trust and rewriting",
    "E": "Exhaustion",
    "F": "Backend faults and lifecycle",
}
H = b"Host: a\r\n"


@dataclass
class Gateway:
    """The conformance portico, over sockets (``proxy`` a process) or in process
    (``harness``); tests taking ``gw`` run both ways, those taking ``sock_gw`` only
    over sockets (they time real deadlines, or read and write at the socket level)."""

    proxy: Portico | None
    recorder: Recorder
    blackhole_port: int
    refused_port: int
    harness: ProxyHarness | None = None

    @property
    def process(self) -> Portico:
        assert self.proxy is not None, "a socket-level test takes the sock_gw fixture"
        return self.proxy

    @property
    def port(self) -> int:
        assert self.proxy is not None, "a socket-level test takes the sock_gw fixture"
        return self.proxy.port

    def send(self, data: bytes, quiet: float = 0.6, source: str = "127.0.0.1") -> Reply:
        """``data`` from a new connection from ``source``; all of the reply, until the
        connection closes or goes quiet."""
        if self.harness is not None:  # nothing in process waits on the kernel: less quiet
            return self.harness.exchange(data, max(0.15, quiet / 4), peer=(source, 50000))
        with socket.socket() as sock:
            sock.bind((source, 0))
            sock.settimeout(10)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(data)
            return read_until_quiet(sock, quiet)

    def assert_rejected(self, data: bytes, status: int) -> Reply:
        """``data`` gets ``status`` alone, then a close, and the upstream sees nothing."""
        reply = self.send(data)
        assert reply.statuses == [status], reply.data[:300]
        assert reply.closed and self.upstream_saw_nothing
        return reply

    @property
    def upstream_saw_nothing(self) -> bool:
        return not self.recorder.requests and all(not c.received for c in self.recorder.connections)


def config(upstream: str, blackhole: int, refused: int) -> str:
    return f"""
[server]
listen = ["http://127.0.0.1:0"]
trusted_proxies = ["127.0.0.2/32"]
tick = 0.1

[server.limits]
head_timeout = "1s"
body_timeout = "1s"
keepalive_timeout = "1s"
send_timeout = "1s"
response_timeout = "1s"
connect_timeout = "1s"
max_body_size = "1MiB"

[server.pool]
max_idle = 0  # a fresh upstream connection per request, so each test's script answers it

[[route]]
path = "/myapp"
upstream = "{upstream}"
request_headers.set = {{ "X-Forwarded-Prefix" = "{{prefix}}" }}

[[route]]
path = "/blackhole"
upstream = "http://127.0.0.1:{blackhole}/"

[[route]]
path = "/refused"
upstream = "http://127.0.0.1:{refused}/"
"""


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with _upstreams() as (recorder, blackhole, refused):
        proxy = Portico(config(recorder.url, blackhole, refused),
                        tmp_path_factory.mktemp("conformance"))
        yield Gateway(proxy, recorder, blackhole, refused)
        proxy.stop()
        assert "Traceback" not in proxy.log_text(), proxy.log_text()


@pytest.fixture(scope="session")
def inprocess_gateway() -> Iterator[Gateway]:
    with _upstreams() as (recorder, blackhole, refused):
        harness = ProxyHarness(config(recorder.url, blackhole, refused))
        yield Gateway(None, recorder, blackhole, refused, harness)
        harness.close()


@contextlib.contextmanager
def _upstreams() -> Iterator[tuple[Recorder, int, int]]:
    """The recording upstream, a blackholed port and a refused one."""
    recorder = Recorder()
    # A listener that never accepts, its one-slot backlog filled: SYNs to it are dropped.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(blackhole.getsockname())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
    try:
        yield recorder, blackhole.getsockname()[1], refused
    finally:
        recorder.close()
        for sock in (*fillers, blackhole):
            sock.close()


@pytest.fixture(params=["inprocess", "socket"])
def gw(request: pytest.FixtureRequest) -> Gateway:
    """The conformance gateway, in process and over sockets (uvicorn's
    ``http_protocol_cls`` pattern): the same bytes in, the same assertions."""
    gateway: Gateway = request.getfixturevalue(
        "inprocess_gateway" if request.param == "inprocess" else "gateway")
    gateway.recorder.reset_log(ok_handler)
    return gateway


@pytest.fixture
def sock_gw(gateway: Gateway) -> Gateway:
    gateway.recorder.reset_log(ok_handler)
    return gateway


_CASE = re.compile(r"(?:test_|[\[-])([a-fA-F])(\d\d)")
_results: dict[str, dict[str, int]] = defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0})
_cases: dict[str, set[str]] = defaultdict(set)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    if "tests/conformance" not in report.nodeid:
        return
    match = _CASE.search(report.nodeid)
    if match:
        section = match.group(1).upper()
        _results[section][report.outcome] += 1
        _cases[section].add(match.group(2))


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not _results:
        return
    terminalreporter.section("hardening catalogue")
    for letter, title in SECTIONS.items():
        counts = _results.get(letter)
        if counts is None:
            continue
        terminalreporter.write_line(
            f"{letter}. {title:<30} cases {len(_cases[letter]):>2}  tests passed "
            f"{counts['passed']:>3}  failed {counts['failed']}  skipped {counts['skipped']}"
        )


def root() -> Path:
    return Path(__file__).parents[2]
