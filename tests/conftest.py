from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.support.portico_proc import Portico, StartPortico
from tests.support.recorder import Recorder

SRC = Path(__file__).resolve().parent.parent / "src"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules older than their source (`make setup` rebuilds)."""
    stamp = SRC / "portico" / ".compiled-stamp"
    built = stamp.stat().st_mtime if stamp.exists() else 0.0
    for module in SRC.glob("portico/**/*.so"):
        source = module.parent / (module.name.split(".", 1)[0] + ".py")
        if source.exists() and source.stat().st_mtime > built:
            pytest.exit(f"{source.relative_to(SRC)} changed after the last compile: run "
                        "`make setup` (or `make setup PORTICO_PURE=1` for pure Python)",
                        returncode=2)


settings.register_profile("default", max_examples=300)
settings.register_profile("fuzz", max_examples=20_000)
settings.load_profile("default")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proxy_config(upstream: str, extra_route: str = "", server: str = "", routes: str = "") -> str:
    """A config with one ``/myapp`` route to ``upstream``; pieces may be added."""
    return f"""
[server]
listen = ["http://127.0.0.1:0"]
tick = 0.1
{server}

[[route]]
path = "/myapp"
upstream = "{upstream}"
{extra_route}
{routes}
"""


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


@pytest.fixture
def start_portico(tmp_path: Path) -> Iterator[StartPortico]:
    started: list[Portico] = []

    def start(config: str, wrapper: list[str] | None = None) -> Portico:
        proc = Portico(config, tmp_path, name=f"portico{len(started)}.toml", wrapper=wrapper)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()  # also closes the pipes of one that already exited
        assert "Traceback" not in proc.log_text(), proc.log_text()
