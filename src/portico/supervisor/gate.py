"""What the proxy needs to know about a supervised app: is it up, or when will it be.

The supervisor moves an app's gate through its states; an exchange whose
route points at the app asks the gate before connecting and, while the app
restarts, waits on it (bounded) instead of failing at once.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable

Waiter = Callable[[bool], None]
Listener = Callable[[str, "AppState"], None]


class AppState(enum.StrEnum):
    STARTING = "starting"
    UP = "up"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPED = "stopped"


class AppGate:
    __slots__ = ("_waiters", "listeners", "loop", "name", "state", "wait_timeout")

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop, wait_timeout: float) -> None:
        self.name = name
        self.loop = loop
        self.wait_timeout = wait_timeout
        self.state = AppState.STARTING
        self._waiters: dict[Waiter, asyncio.TimerHandle] = {}
        self.listeners: list[Listener] = []  # told of every change (the worker processes)

    @property
    def up(self) -> bool:
        return self.state is AppState.UP

    @property
    def gone(self) -> bool:
        """Failed or stopped: waiting would not help."""
        return self.state in (AppState.FAILED, AppState.STOPPED)

    def wait(self, waiter: Waiter) -> None:
        """Call ``waiter(True)`` when the app next comes up, ``waiter(False)`` on timeout
        or if it fails meanwhile."""
        if self.gone:
            waiter(False)
            return
        self._waiters[waiter] = self.loop.call_later(self.wait_timeout, self._expire, waiter)

    def set(self, state: AppState) -> None:
        self.state = state
        for listener in self.listeners:
            listener(self.name, state)
        if state is AppState.UP or self.gone:
            waiters, self._waiters = self._waiters, {}
            for waiter, timer in waiters.items():
                timer.cancel()
                waiter(state is AppState.UP)

    def unavailable_reason(self) -> str:
        """What a 503 for this app says."""
        if self.gone:
            return f"app {self.name!r} is {self.state}; see its log or `portico status`"
        return f"app {self.name!r} did not come up within {self.wait_timeout:g}s"

    def _expire(self, waiter: Waiter) -> None:
        if self._waiters.pop(waiter, None) is not None:
            waiter(False)
