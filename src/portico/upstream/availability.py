"""Whether a backend can take requests now, or when it will: its availability gate.

Whoever knows moves a gate through its states: the supervisor for a supervised
app (in the main process; workers follow over the channel that carries app
states); a health checker could do the same for any other backend (none does
yet: only an app's backend has a gate, ``Backend.gate``). An exchange asks its
backend's gate before connecting and, while the backend (re)starts, waits on it
(bounded) instead of failing at once.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portico.upstream.backend import Backend

Waiter = Callable[[bool], None]
Listener = Callable[[str, "BackendState"], None]


class BackendState(enum.StrEnum):
    STARTING = "starting"
    UP = "up"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


class Availability:
    """One backend's gate. ``kind`` and ``name`` say what it is in a 503: "app", "web"."""

    __slots__ = ("_waiters", "kind", "listeners", "loop", "name", "state", "wait_timeout")

    def __init__(
        self, name: str, loop: asyncio.AbstractEventLoop, wait_timeout: float, kind: str = "app"
    ) -> None:
        self.name = name
        self.kind = kind
        self.loop = loop
        self.wait_timeout = wait_timeout
        self.state = BackendState.STARTING
        self._waiters: dict[Waiter, asyncio.TimerHandle] = {}
        self.listeners: list[Listener] = []  # told of every change (the worker processes)

    @property
    def up(self) -> bool:
        return self.state is BackendState.UP

    @property
    def gone(self) -> bool:
        """Failed or stopped: waiting would not help."""
        return self.state in (BackendState.FAILED, BackendState.STOPPED)

    def wait(self, waiter: Waiter) -> None:
        """Call ``waiter(True)`` when the backend next comes up, ``waiter(False)`` on timeout
        or if it fails meanwhile."""
        if self.gone:
            waiter(False)
            return
        self._waiters[waiter] = self.loop.call_later(self.wait_timeout, self._expire, waiter)

    def set(self, state: BackendState) -> None:
        self.state = state
        for listener in self.listeners:
            listener(self.name, state)
        if state is BackendState.UP or self.gone:
            waiters, self._waiters = self._waiters, {}
            for waiter, timer in waiters.items():
                timer.cancel()
                waiter(state is BackendState.UP)

    def unavailable_reason(self) -> str:
        """What a 503 for this backend says."""
        if self.gone:
            return f"{self.kind} {self.name!r} is {self.state}; see its log or `portico status`"
        return f"{self.kind} {self.name!r} did not come up within {self.wait_timeout:g}s"

    def _expire(self, waiter: Waiter) -> None:
        if self._waiters.pop(waiter, None) is not None:
            waiter(False)


def usable(backend: Backend, now: float) -> bool:
    """Whether a balanced route may send ``backend`` a request now (its active check
    aside: ``Member.check``): passive health has not taken it out, its app (if any) is
    up."""
    if backend.down_until > now:
        return False
    gate = backend.gate
    return gate is None or gate.up
