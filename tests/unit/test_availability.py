"""A backend's availability gate: waiters are told when it comes up, fails or times out."""

from __future__ import annotations

import asyncio

from portico.upstream.availability import Availability, BackendState


def test_a_waiter_is_told_when_the_backend_comes_up_and_listeners_of_every_change() -> None:
    async def scenario() -> tuple[list[bool], list[tuple[str, BackendState]]]:
        gate = Availability("web", asyncio.get_running_loop(), 10.0, kind="backend")
        told: list[tuple[str, BackendState]] = []
        gate.listeners.append(lambda name, state: told.append((name, state)))
        seen: list[bool] = []
        gate.wait(seen.append)
        gate.set(BackendState.RESTARTING)
        assert seen == [] and not gate.up
        gate.set(BackendState.UP)
        return seen, told

    seen, told = asyncio.run(scenario())
    assert seen == [True]
    assert told == [("web", BackendState.RESTARTING), ("web", BackendState.UP)]


def test_a_waiter_gives_up_after_the_wait_and_at_once_on_a_gone_backend() -> None:
    async def scenario() -> tuple[bool, list[bool], str, str]:
        loop = asyncio.get_running_loop()
        gate = Availability("web", loop, 0.01, kind="backend")
        timed_out: asyncio.Future[bool] = loop.create_future()
        gate.wait(timed_out.set_result)
        late = await timed_out
        waiting = gate.unavailable_reason()
        gate.set(BackendState.FAILED)
        seen: list[bool] = []
        gate.wait(seen.append)
        return late, seen, waiting, gate.unavailable_reason()

    late, seen, waiting, gone = asyncio.run(scenario())
    assert late is False and seen == [False]
    assert waiting == "backend 'web' did not come up within 0.01s"
    assert gone.startswith("backend 'web' is failed")


def test_an_app_gate_still_speaks_of_the_app() -> None:
    async def reason() -> str:
        gate = Availability("api", asyncio.get_running_loop(), 2.0)
        gate.set(BackendState.STOPPED)
        return gate.unavailable_reason()

    assert asyncio.run(reason()) == "app 'api' is stopped; see its log or `portico status`"
