"""Balanced routes in process: several ScriptedUpstreams behind one route.

Retries follow the POST rule (a failed connect: any method, to another backend; a
request that was sent: only an idempotent one without a body), passive health takes a
failing backend out, and a reload keeps what is known of an unchanged backend.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico.config.compile import serving_plan
from portico.config.load import parse
from portico.config.provision import build_gateway
from portico.proxy.phases import Balanced
from portico.upstream.probes import Check
from tests.support.harness import ProxyHarness, new_loop
from tests.support.scripted import Script, ScriptedUpstream, UpstreamConn, ok_script

GET = b"GET /p/x HTTP/1.1\r\nHost: a\r\n\r\n"
POST = b"POST /p/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"


def free_port() -> int:
    """A loopback port nothing listens on (connects are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def named(name: bytes) -> Script:
    async def script(conn: UpstreamConn) -> None:
        while await conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(name), name))
    return script


async def swallow(conn: UpstreamConn) -> None:
    """Reads the request, then closes without a byte of answer."""
    await conn.read_request()
    conn.close()


class Setup:
    def __init__(self, harness: ProxyHarness, upstreams: list[ScriptedUpstream]) -> None:
        self.harness = harness
        self.upstreams = upstreams


def balanced(scripts: list[Script], extra: str = "", dead: int = 0) -> Setup:
    """A route /p over one ScriptedUpstream per script (and ``dead`` refused ports first)."""
    loop = new_loop()
    upstreams = [loop.run_until_complete(ScriptedUpstream(s).start()) for s in scripts]
    urls = [f"http://127.0.0.1:{free_port()}/" for _ in range(dead)] + [u.url for u in upstreams]
    quoted = ", ".join(f'"{url}"' for url in urls)
    harness = ProxyHarness(f'[[route]]\npath = "/p"\nupstreams = [{quoted}]\n{extra}', loop=loop)
    harness.upstreams.extend(upstreams)
    return Setup(harness, upstreams)


@pytest.fixture
def close() -> Iterator[list[Setup]]:
    made: list[Setup] = []
    yield made
    for setup in made:
        setup.harness.close()


def test_round_robin_spreads_requests(close: list[Setup]) -> None:
    setup = balanced([named(b"a"), named(b"b")])
    close.append(setup)
    bodies = [setup.harness.exchange(GET).body for _ in range(4)]
    assert sorted(bodies) == [b"a", b"a", b"b", b"b"]


def test_a_refused_connect_is_retried_on_another_backend_even_for_post(
    close: list[Setup],
) -> None:
    setup = balanced([ok_script], 'balance = "first"\nmax_fails = 2', dead=1)
    close.append(setup)
    harness, (alive,) = setup.harness, setup.upstreams
    assert harness.exchange(POST).status == 200
    assert alive.requests[0].body == b"hello"
    assert harness.exchange(POST).status == 200
    dead = harness.gateway.routes.routes[0].backends[0]
    assert dead.down_until > harness.gateway.now  # two failures: out for fail_duration
    assert "refused" in dead.reason.lower() or "connect" in dead.reason
    assert harness.exchange(GET).status == 200
    assert len(alive.requests) == 3


def test_a_post_that_was_sent_is_never_sent_again(close: list[Setup]) -> None:
    setup = balanced([swallow, ok_script], 'balance = "first"')
    close.append(setup)
    first, second = setup.upstreams
    reply = setup.harness.exchange(POST)
    assert reply.status == 502
    assert len(first.requests) == 1 and second.requests == []


def test_a_get_that_was_sent_and_lost_goes_to_the_next_backend(close: list[Setup]) -> None:
    setup = balanced([swallow, ok_script], 'balance = "first"')
    close.append(setup)
    first, second = setup.upstreams
    assert setup.harness.exchange(GET).status == 200
    assert len(first.requests) == 1 and len(second.requests) == 1


def test_retries_bound_the_backends_tried(close: list[Setup]) -> None:
    setup = balanced([swallow, swallow, swallow], 'balance = "first"\nretries = 1')
    close.append(setup)
    assert setup.harness.exchange(GET).status == 502
    assert [len(u.requests) for u in setup.upstreams] == [1, 1, 0]


def test_every_backend_down_is_a_503_with_retry_after(close: list[Setup]) -> None:
    setup = balanced([], "max_fails = 1\nfail_duration = \"30s\"", dead=2)
    close.append(setup)
    assert setup.harness.exchange(GET).status == 502  # both refused: the last error
    reply = setup.harness.exchange(GET)
    assert reply.status == 503
    assert reply.header(b"retry-after") == b"30"
    assert b"every backend of this route is down" in reply.body
    setup.harness.advance(31)  # fail_duration over: tried again
    assert setup.harness.exchange(GET).status == 502


def test_unhealthy_status_takes_a_backend_out(close: list[Setup]) -> None:
    async def unavailable(conn: UpstreamConn) -> None:
        while await conn.read_request() is not None:
            conn.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")

    setup = balanced([unavailable, named(b"b")],
                     "max_fails = 1\nunhealthy_status = [503]\nbalance = \"first\"")
    close.append(setup)
    assert setup.harness.exchange(GET).status == 503  # passed on, and counted
    assert all(setup.harness.exchange(GET).body == b"b" for _ in range(3))


def test_sticky_cookie_end_to_end(close: list[Setup]) -> None:
    setup = balanced([named(b"a"), named(b"b"), named(b"c")], 'balance = "cookie"')
    close.append(setup)
    harness = setup.harness
    first = harness.exchange(GET)
    cookie = first.header(b"set-cookie")
    assert cookie is not None and cookie.startswith(b"portico_backend=")
    jar = cookie.split(b";")[0]
    with_cookie = GET.replace(b"Host: a\r\n", b"Host: a\r\nCookie: " + jar + b"\r\n")
    for _ in range(8):  # 1,000 of them: tests/unit/test_balancer.py
        reply = harness.exchange(with_cookie)
        assert reply.body == first.body and reply.header(b"set-cookie") is None


def test_reload_keeps_fail_counts_health_and_pooled_connections(close: list[Setup]) -> None:
    health = '[route.health]\npath = "/h"\ninterval = "1h"'
    setup = balanced([ok_script], "max_fails = 5\n" + health, dead=1)
    close.append(setup)
    harness = setup.harness
    assert harness.exchange(b"GET /p/x HTTP/1.1\r\nHost: a\r\n\r\n").status == 200
    old = harness.gateway
    dead, alive = old.routes.routes[0].backends
    verdict = old.pool.check_state(dead, Check("/h", 3600.0, 5.0))
    verdict.record(False, "health check answered 503", 1.0)  # as a probe would
    assert dead.fails >= 1 and len(alive.idle) == 1
    fails, idle = dead.fails, list(alive.idle)
    # The same addresses under another path: the reload's gateway shares the pool.
    urls = ", ".join(f'"http://{b.label}/"' for b in (dead, alive))
    config = f'[[route]]\npath = "/q"\nupstreams = [{urls}]\nmax_fails = 5\n'
    plan = serving_plan(parse(config + health, "reload"), Path.cwd(), Path.cwd())
    new = build_gateway(plan, harness.loop, pool=old.pool)
    kept_dead, kept_alive = new.routes.routes[0].backends
    assert kept_dead is dead and kept_dead.fails == fails
    assert kept_alive is alive and kept_alive.idle == idle
    selector = new.policies.routes[0].select_backend
    assert isinstance(selector, Balanced)
    assert selector.members[0].check is verdict and verdict.probes == 1
    # A changed check starts fresh.
    plan = serving_plan(parse(config + health.replace("/h", "/ready"), "reload"),
                        Path.cwd(), Path.cwd())
    changed = build_gateway(plan, harness.loop, pool=old.pool).policies.routes[0]
    assert isinstance(changed.select_backend, Balanced)
    fresh = changed.select_backend.members[0].check
    assert fresh is not None and fresh is not verdict and fresh.probes == 0


def test_a_redirect_to_any_backends_own_url_maps_back(close: list[Setup]) -> None:
    async def redirect(conn: UpstreamConn) -> None:
        while await conn.read_request() is not None:
            port = conn.writer.get_extra_info("sockname")[1]
            conn.send(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/next\r\n"
                      b"Content-Length: 0\r\n\r\n" % port)

    setup = balanced([redirect, redirect])
    close.append(setup)
    locations = {setup.harness.exchange(GET).header(b"location") for _ in range(2)}
    assert locations == {b"http://a/p/next"}
