"""A backend drained by the admin API (server/backend_drain.py), below the API: what
the request path's ``available`` and the status's ``why`` see, and what passive health
and the all-down 503 do with it. The API, the workers and reloads: tests/integration/
test_balancing.py and test_admin.py."""

from __future__ import annotations

from portico.server import channel
from portico.server.backend_drain import DRAINED_WHY, apply, mark
from portico.upstream.backend import Backend
from portico.upstream.balancer import Member
from portico.upstream.health import PassiveHealth, all_down, available, why
from portico.upstream.pool import UpstreamPool


def test_drained_is_unavailable_with_its_why_and_enable_forgets_failures() -> None:
    backend = Backend("http", "127.0.0.1", 9001)
    member = Member(backend)
    backend.fails = 3
    mark(backend, True)
    assert not available(member, 1e12) and why(member, 0.0) == DRAINED_WHY
    mark(backend, False)
    assert available(member, 0.0) and why(member, 0.0) == "" and backend.fails == 0


def test_passive_failures_never_end_a_drain() -> None:
    backend = Backend("http", "127.0.0.1", 9001)
    mark(backend, True)
    PassiveHealth(max_fails=1, fail_duration=1.0).failed(backend, 5.0, "refused")
    assert not available(Member(backend), 100.0) and why(Member(backend), 100.0) == DRAINED_WHY


def test_all_down_with_a_drained_backend_has_a_finite_retry_after() -> None:
    drained, failed = Backend("http", "127.0.0.1", 9001), Backend("http", "127.0.0.1", 9002)
    mark(drained, True)
    PassiveHealth(max_fails=1, fail_duration=4.0).failed(failed, 10.0, "refused")
    error = all_down([Member(drained), Member(failed)], 10.0, interval=2.0)
    assert error.status == 503 and error.retry_after == 4
    assert DRAINED_WHY in str(error)
    alone = all_down([Member(drained)], 10.0, interval=2.0)
    assert alone.retry_after == 2


def test_apply_marks_the_pool_as_the_set_says_and_the_message_round_trips() -> None:
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        pool = UpstreamPool(loop, 4, 30.0)
        a = pool.backend(Backend("http", "127.0.0.1", 9001))
        b = pool.backend(Backend("http", "127.0.0.1", 9002))
        apply(pool, {a.key})
        assert a.drained and not b.drained
        apply(pool, set())
        assert not a.drained
    finally:
        loop.close()
    message = channel.BackendDrain(*a.key, True)
    assert channel.decode(channel.encode(message)) == message
