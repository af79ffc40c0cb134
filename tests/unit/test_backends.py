"""The runtime's backends: one per address, their state and idle connections kept
across a reload that leaves the address as it was."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.config.provision import build_gateway
from portico.proxy.gateway import Gateway
from portico.upstream.availability import Availability, BackendState
from portico.upstream.backend import Backend
from portico.upstream.connection import UpstreamConnection
from portico.upstream.pool import UpstreamPool
from tests.conftest import proxy_config
from tests.support.harness import ProxyHarness


class Transport:
    """Enough of an asyncio transport for a pooled connection: it says when it is cut."""

    def __init__(self) -> None:
        self.aborted = False

    def set_write_buffer_limits(self, high: int, low: int) -> None: ...
    def get_extra_info(self, name: str) -> Any: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...

    def abort(self) -> None:
        self.aborted = True


def config(upstream: str, *, other: str = "http://127.0.0.1:9002/", stage: str = "one") -> str:
    return f"""
[server]
listen = ["http://127.0.0.1:8080"]
access_log = "/dev/null"
[[route]]
path = "/a"
upstream = "{upstream}"
request_headers.set = {{ "X-Stage" = "{stage}" }}
[[route]]
path = "/b"
upstream = "{other}"
"""


BUILT: list[Gateway] = []


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    while BUILT:
        BUILT.pop().access_log.close()
    loop.close()


def gateway(text: str, loop: asyncio.AbstractEventLoop, pool: UpstreamPool | None = None) -> Gateway:
    plan = serving_plan(parse(text, "test"), Path.cwd(), Path.cwd())
    built = build_gateway(plan, loop, pool=pool)
    BUILT.append(built)
    return built


def pooled(backend: Backend, pool: UpstreamPool) -> tuple[UpstreamConnection, Transport]:
    """An idle connection to ``backend``, as one that served a request leaves it."""
    conn = UpstreamConnection(backend)
    transport = Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    pool.release(backend.lent(conn), 0.0)
    return conn, transport


def test_a_reload_that_keeps_an_address_keeps_its_backend_state_and_connections(
    loop: asyncio.AbstractEventLoop,
) -> None:
    old = gateway(config("http://127.0.0.1:9001/base/"), loop)
    backend = old.routes.routes[0].backend
    conn, transport = pooled(backend, old.pool)
    backend.failures = 2
    new = gateway(config("http://127.0.0.1:9001/other/", stage="two"), loop, pool=old.pool)
    new.serve_backends()
    route = new.routes.routes[0]
    assert route.backend is backend and route.base_path == b"/other/"  # base path: the route's
    assert backend.failures == 2 and backend.idle == [conn] and not transport.aborted
    assert new.pool.acquire(route.backend) is conn and backend.in_flight == 1
    old.successor = new
    old.abort_all()  # the replaced gateway's drain ends: the shared pool stays open
    new.pool.release(conn, 1.0)
    assert backend.idle == [conn] and backend.in_flight == 0 and not transport.aborted


def test_a_connection_knows_it_sat_in_the_pool_even_at_clock_zero(
    loop: asyncio.AbstractEventLoop,
) -> None:
    backend = gateway(config("http://127.0.0.1:9001/"), loop).routes.routes[0].backend
    pool = UpstreamPool(loop, 4, 1.5)
    fresh = UpstreamConnection(backend)
    assert not fresh.from_pool  # connected for this request: a break is not a stale close
    conn, _ = pooled(backend, pool)  # released at loop time 0.0
    assert pool.acquire(backend) is conn and conn.from_pool


def test_a_changed_address_gets_a_fresh_backend_and_the_old_one_is_closed(
    loop: asyncio.AbstractEventLoop,
) -> None:
    old = gateway(config("http://127.0.0.1:9001/"), loop)
    before, kept = (route.backend for route in old.routes.routes)
    idle, idle_transport = pooled(before, old.pool)
    lent = before.lent(UpstreamConnection(before))
    lent_transport = Transport()
    lent.connection_made(lent_transport)  # type: ignore[arg-type]
    new = gateway(config("http://127.0.0.1:9003/"), loop, pool=old.pool)
    after = new.routes.routes[0].backend
    assert after is not before and after.idle == [] and after.failures == 0
    assert new.routes.routes[1].backend is kept
    assert before.idle == [idle] and not idle_transport.aborted  # not before the new gateway
    # serves: a reload may yet fail
    new.serve_backends()
    assert idle_transport.aborted and before.idle == [] and before.retired
    assert set(new.pool.backends.values()) == {after, kept}
    # A request of the replaced gateway still holds a connection to the old address:
    # it is closed when that request ends, never pooled again.
    new.pool.release(lent, 1.0)
    assert lent_transport.aborted and before.idle == [] and before.in_flight == 0


def test_a_tls_identity_is_part_of_the_address() -> None:
    plain = Backend("https", "example.test", 443, None, "verify=True;ca=")
    other_ca = Backend("https", "example.test", 443, None, "verify=True;ca=/etc/ca.pem")
    assert plain != other_ca and plain.key != other_ca.key
    assert plain.authority == b"example.test" and plain.label == "example.test"
    assert Backend("http", "::1", 8080).authority == b"[::1]:8080"


def test_the_pool_limit_of_the_serving_config_applies(loop: asyncio.AbstractEventLoop) -> None:
    old = gateway(config("http://127.0.0.1:9001/"), loop)
    limits = '[server.pool]\nmax_idle = 1\nidle_timeout = "3s"\n[[route]]'
    new = gateway(config("http://127.0.0.1:9001/").replace("[[route]]", limits, 1), loop,
                  pool=old.pool)
    assert (old.pool.max_idle, old.pool.idle_timeout) != (1, 3.0)  # not before it serves
    new.serve_backends()
    assert (new.pool.max_idle, new.pool.idle_timeout) == (1, 3.0)
    backend = new.routes.routes[0].backend
    first, first_transport = pooled(backend, new.pool)
    _, second_transport = pooled(backend, new.pool)
    assert backend.idle == [first] and second_transport.aborted and not first_transport.aborted


def test_a_supervised_app_gates_its_backend(loop: asyncio.AbstractEventLoop) -> None:
    text = config("http://127.0.0.1:9001/").replace("[[route]]", """[[app]]
name = "api"
command = ["python3", "-m", "http.server", "{port}"]
bind = "127.0.0.1:9005"
[[route]]
path = "/api"
app = "api"
[[route]]""", 1)
    plan = serving_plan(parse(text, "test"), Path.cwd(), Path.cwd())
    gates = {"api": Availability("api", loop, 5.0)}
    built = build_gateway(plan, loop, gates)
    BUILT.append(built)
    app, plain, _ = built.routes.routes
    assert app.backend.gate is gates["api"] and app.backend.key == ("http", "127.0.0.1", 9005, "")
    assert plain.backend.gate is None


def test_an_exchange_waits_on_its_backends_gate_then_connects_or_answers_503() -> None:
    harness, upstream = ProxyHarness.with_upstream(proxy_config)
    try:
        backend = harness.gateway.routes.routes[0].backend
        gate = backend.gate = Availability("api", harness.loop, 5.0)
        client = harness.client()
        client.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.turn()
        assert not client.received and not upstream.connections  # the app is starting
        gate.set(BackendState.UP)
        harness.run_until(lambda: b"\r\n\r\n" in client.received)
        harness.settle(client)
        assert client.take().startswith(b"HTTP/1.1 200 ") and len(upstream.requests) == 1
        gate.set(BackendState.FAILED)
        client.send(b"GET /myapp/ HTTP/1.1\r\nHost: a\r\n\r\n")
        harness.run_until(lambda: b"\r\n\r\n" in client.received)
        harness.settle(client)
        reply = client.reply()
        assert reply.status == 503 and b"is failed" in reply.data
        assert len(upstream.requests) == 1
    finally:
        harness.close()
