"""The balancing policies with a seeded RNG: shares, choices, hash remapping, stickiness."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from portico.http.events import Body, Request
from portico.policy.context import RequestFacts
from portico.upstream.backend import Backend
from portico.upstream.balancer import (
    IpHash,
    LeastConn,
    Member,
    RandomTwo,
    RoundRobin,
    Sticky,
    UriHash,
    cookie_value,
    make_policy,
)
from portico.upstream.health import PassiveHealth, all_down
from portico.upstream.probes import Check, CheckState


def members(*weights: int) -> list[Member]:
    return [Member(Backend("http", "127.0.0.1", 9000 + i), w) for i, w in enumerate(weights)]


def request(target: bytes = b"/", cookie: bytes = b"", header: bytes = b"") -> Request:
    headers = [(b"Host", b"a.test")]
    if cookie:
        headers.append((b"Cookie", cookie))
    if header:
        headers.append((b"X-User", header))
    return Request(b"GET", target, b"1.1", headers, b"a.test", Body.NONE, 0, True, False)


def facts(addr: bytes = b"127.0.0.1") -> RequestFacts:
    return RequestFacts(b"http", b"a.test", b"80", addr, b"", b"rid")


def test_round_robin_gives_each_backend_its_weight_within_one_percent() -> None:
    pool = members(1, 3, 6)
    policy = RoundRobin()
    picks = Counter(policy.pick(pool, request(), facts()).backend.port for _ in range(10_000))
    for member in pool:
        share = picks[member.backend.port] / 10_000
        assert abs(share - member.weight / 10) <= 0.01, picks


def test_round_robin_interleaves_instead_of_bursting() -> None:
    pool = members(1, 3)
    policy = RoundRobin()
    order = [policy.pick(pool, request(), facts()).weight for _ in range(8)]
    assert order.count(1) == 2 and order[:4].count(1) == 1


def test_least_conn_picks_the_least_busy_by_weight() -> None:
    pool = members(1, 1, 2)
    pool[0].backend.in_flight, pool[1].backend.in_flight, pool[2].backend.in_flight = 3, 1, 4
    policy = LeastConn(random.Random(1))
    assert policy.pick(pool, request(), facts()) is pool[1]


class RecordingRandom(random.Random):
    """A seeded Random that remembers the pairs ``sample`` drew."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.drawn: list[tuple[Member, Member]] = []

    def sample(self, population: Sequence[Any], k: int, *,
               counts: Iterable[int] | None = None) -> list[Any]:
        pair = super().sample(population, k)
        self.drawn.append((pair[0], pair[1]))
        return pair


def test_random_two_never_picks_the_busier_of_its_two() -> None:
    rng = RecordingRandom(7)
    pool = members(1, 1, 1, 1, 1)
    for member, load in zip(pool, (5, 0, 9, 2, 7), strict=True):
        member.backend.in_flight = load
    policy = RandomTwo(rng)
    for _ in range(1000):
        chosen = policy.pick(pool, request(), facts())
        first, second = rng.drawn[-1]
        assert chosen.backend.in_flight == min(first.backend.in_flight,
                                               second.backend.in_flight)
    assert len(set(rng.drawn)) > 5  # it did draw different pairs


def test_removing_one_of_four_remaps_only_its_keys() -> None:
    pool = members(1, 1, 1, 1)
    policy = UriHash()
    keys = [b"/item/%d" % i for i in range(10_000)]
    before = {key: policy.pick(pool, request(key), facts()) for key in keys}
    gone = pool[2]
    after = {key: policy.pick([m for m in pool if m is not gone], request(key), facts())
             for key in keys}
    moved = [key for key in keys if before[key] is not after[key]]
    assert abs(len(moved) / len(keys) - 0.25) <= 0.03
    assert all(before[key] is gone for key in moved)  # none of the others' keys moved


def test_ip_hash_is_stable_per_client() -> None:
    pool = members(1, 1, 1)
    policy = IpHash()
    first = policy.pick(pool, request(), facts(b"10.1.2.3"))
    assert all(policy.pick(pool, request(), facts(b"10.1.2.3")) is first for _ in range(50))
    spread = {policy.pick(pool, request(), facts(b"10.0.0.%d" % i)) for i in range(100)}
    assert len(spread) == 3


def test_header_hash_without_the_header_goes_round_robin() -> None:
    pool = members(1, 1)
    policy = make_policy("header", "X-User", b"k", random.Random(1))
    pinned = policy.pick(pool, request(header=b"alice"), facts())
    assert all(policy.pick(pool, request(header=b"alice"), facts()) is pinned for _ in range(20))
    assert {policy.pick(pool, request(), facts()) for _ in range(4)} == set(pool)


def test_cookie_affinity_holds_for_a_thousand_requests() -> None:
    pool = members(1, 1, 1)
    policy = Sticky("portico_backend", b"secret")
    first = policy.pick(pool, request(), facts())
    headers = policy.stamp([], request(), first.backend)
    set_cookie = dict(headers)[b"Set-Cookie"]
    value = set_cookie.split(b";")[0]  # name=value
    jar = value
    for _ in range(1000):
        chosen = policy.pick(pool, request(cookie=b"other=1; " + jar), facts())
        assert chosen is first
        assert policy.stamp([], request(cookie=jar), chosen.backend) == []  # not set again


def test_a_forged_or_unknown_cookie_is_not_followed() -> None:
    pool = members(1, 1)
    policy = Sticky("portico_backend", b"secret")
    forged = b"portico_backend=" + pool[1].ident + b".0000000000000000"
    assert policy.pinned(request(cookie=forged)) is None
    other = Sticky("portico_backend", b"another secret")
    signed = b"portico_backend=" + other.sign(pool[1].ident)
    assert policy.pinned(request(cookie=signed)) is None


def test_a_sticky_backend_that_is_down_hands_its_clients_on() -> None:
    pool = members(1, 1)
    policy = Sticky("sid", b"secret")
    cookie = b"sid=" + policy.sign(pool[0].ident)
    assert policy.pick(pool, request(cookie=cookie), facts()) is pool[0]
    assert policy.pick(pool[1:], request(cookie=cookie), facts()) is pool[1]
    assert policy.stamp([], request(cookie=cookie), pool[1].backend)  # re-pinned


def test_cookie_value() -> None:
    assert cookie_value(b"a=1; sid=x.y;b=2", b"sid") == b"x.y"
    assert cookie_value(b"a=1", b"sid") is None
    assert cookie_value(b"", b"sid") is None


def test_passive_health_counts_failures_within_the_window() -> None:
    backend = Backend("http", "127.0.0.1", 9000)
    health = PassiveHealth(max_fails=2, fail_duration=10.0, statuses=(503,), latency=1.0)
    health.failed(backend, 100.0, "refused")
    assert backend.down_until == 0.0
    health.failed(backend, 111.0, "refused")  # the first is out of the window
    assert backend.down_until == 0.0 and backend.fails == 1
    health.answered(backend, 503, 0.1, 112.0)
    assert backend.down_until == 122.0 and "503" in backend.reason
    health.answered(backend, 200, 2.5, 130.0)  # too slow: a failure
    assert backend.fails == 1


def test_all_down_is_a_503_with_retry_after() -> None:
    pool = members(1, 1)
    pool[0].backend.down_until, pool[0].backend.reason = 107.2, "3 failures"
    pool[1].check = CheckState(Check("/h", 5.0, 1.0, fails=1))
    pool[1].check.record(False, "health check answered 503", 1.0)
    error = all_down(pool, 100.0, 5.0)
    assert error.status == 503 and error.retry_after == 5
    assert "3 failures" in str(error) and "answered 503" in str(error)


def test_a_check_falls_after_fails_and_rises_after_passes() -> None:
    state = CheckState(Check("/h", 1.0, 1.0, passes=2, fails=3))
    for passed, up in ((False, True), (True, True), (False, True), (False, True),
                       (False, False), (True, False), (True, True)):
        state.record(passed, "" if passed else "503", 0.0)
        assert state.up is up
    assert state.probes == 7 and state.reason == ""


def test_with_every_backend_down_a_restarting_app_is_waited_for() -> None:
    from portico.proxy.phases import Balanced
    from portico.upstream.availability import Availability, BackendState
    from tests.support.harness import ProxyHarness

    harness = ProxyHarness('[[route]]\npath = "/"\nupstream = "http://127.0.0.1:9/"\n')
    try:
        gateway = harness.gateway
        gateway.now = 100.0
        pool = members(1, 1)
        selector = Balanced(pool, RoundRobin(), gateway, 2, 0.0, 5.0)
        pool[0].backend.down_until = 200.0
        gate = Availability("app", harness.loop, 5.0)
        gate.set(BackendState.RESTARTING)
        pool[1].backend.gate = gate
        assert selector.select(request(), facts()) is pool[1].backend  # its gate waits
        gate.set(BackendState.FAILED)
        assert selector.select(request(), facts()) is None
        assert selector.unavailable().retry_after == 100
        gate.set(BackendState.UP)
        assert selector.select(request(), facts()) is pool[1].backend
    finally:
        harness.close()


def test_retry_is_bounded_by_retries_and_try_duration() -> None:
    from portico.proxy.phases import Balanced
    from tests.support.harness import ProxyHarness

    harness = ProxyHarness('[[route]]\npath = "/"\nupstream = "http://127.0.0.1:9/"\n')
    try:
        pool = members(1, 1, 1, 1)
        selector = Balanced(pool, RoundRobin(), harness.gateway, 2, 3.0, 5.0)
        tried = [pool[0].backend]
        second = selector.retry(request(), facts(), tried, 0.5)
        assert second is not None and second not in tried
        tried.append(second)
        third = selector.retry(request(), facts(), tried, 1.0)
        assert third is not None and third not in tried
        tried.append(third)
        assert selector.retry(request(), facts(), tried, 1.5) is None  # retries = 2 spent
        assert selector.retry(request(), facts(), tried[:1], 3.0) is None  # try_duration
    finally:
        harness.close()
