"""A reload keeps the warm connections of a backend it leaves as it was.

Counted where it shows: the accepts of a real upstream across SIGHUP reloads
of a real portico. Parametrised over ``[server] workers``: the pool is each serving process's
runtime's and survives, since workers are reloaded in place.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.portico_proc import Portico
from tests.support.recorder import Conn, Recorder
from tests.support.supervised import wait_until

# With N workers each keeps one pooled connection of its own. Twenty requests on twenty
# client connections reach both of two workers (the kernel spreads them by address:
# all on one would be a chance of 2 in a million).
WORKERS = [1, 2]
WARM = 20


class Upstream(Recorder):
    """Echoes the X-Stage it was sent; counts accepts (``connections``) and closes."""

    def __init__(self) -> None:
        self.closed: list[Conn] = []
        self.closed_one = threading.Event()
        super().__init__(self._echo)

    def _echo(self, conn: Conn) -> None:
        while (seen := conn.read_request()) is not None:
            stage = seen.header(b"x-stage") or b"-"
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(stage), stage))
        self.closed.append(conn)  # portico closed it (read_request saw the end)
        self.closed_one.set()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def config(upstream: Upstream, stage: str, workers: int, extra: str = "") -> str:
    return f"""
[server]
listen = ["http://127.0.0.1:0"]
workers = {workers}
tick = 0.1
drain_timeout = "5s"
[server.pool]
idle_timeout = "60s"  # longer than the test: a connection goes only by a reload

[[route]]
path = "/a"
upstream = "{upstream.url}"
request_headers.set = {{ "X-Stage" = "{stage}" }}
{extra}
"""


def reload(proxy: Portico, text: str) -> None:
    """Put ``text`` in place with SIGHUP; returns once portico says it reloaded."""
    done = proxy.log_text().count("reloaded ")
    proxy.config_path.write_text(text)
    os.kill(proxy.pid, signal.SIGHUP)
    wait_until(lambda: proxy.log_text().count("reloaded ") > done, 15, "the reload")


def get_all(url: str, count: int) -> list[str]:
    """``count`` answers, each on its own client connection (the upstream's are pooled)."""
    return [httpx.get(url, timeout=5).text for _ in range(count)]


@pytest.mark.parametrize("workers", WORKERS)
def test_a_reload_that_leaves_a_backend_as_it_was_keeps_its_connection(
    start_portico: Any, upstream: Upstream, other: Upstream, workers: int
) -> None:
    proxy = start_portico(config(upstream, "one", workers))
    assert get_all(f"{proxy.url}/a/", WARM) == ["one"] * WARM
    assert len(upstream.connections) == workers

    # A header rule and a new route change; the backend of /a does not.
    more = f'[[route]]\npath = "/b"\nupstream = "{other.url}"\n'
    reload(proxy, config(upstream, "two", workers, extra=more))
    assert get_all(f"{proxy.url}/a/", WARM) == ["two"] * WARM
    assert get_all(f"{proxy.url}/b/", 1) == ["-"]
    reload(proxy, config(upstream, "three", workers))  # /b goes
    assert get_all(f"{proxy.url}/a/", WARM) == ["three"] * WARM

    assert len(upstream.connections) == workers and upstream.closed == []
    assert other.closed_one.wait(5), "the connection to a backend no route names stays open"
    assert len(other.connections) == 1


@pytest.mark.parametrize("workers", WORKERS)
def test_a_reload_that_moves_a_route_to_another_address_closes_the_old_connection(
    start_portico: Any, upstream: Upstream, other: Upstream, workers: int
) -> None:
    proxy = start_portico(config(upstream, "one", workers))
    assert get_all(f"{proxy.url}/a/", WARM) == ["one"] * WARM
    assert len(upstream.connections) == workers

    reload(proxy, config(other, "two", workers))
    assert upstream.closed_one.wait(5), "the pooled connection to the old address stays open"
    assert get_all(f"{proxy.url}/a/", WARM) == ["two"] * WARM
    assert len(upstream.connections) == workers and len(other.connections) == workers
