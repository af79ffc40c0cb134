"""The fastest event loop the platform has: uvloop, winloop, else asyncio's."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable


def loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    try:
        if sys.platform == "win32":
            import winloop

            return "winloop", winloop.new_event_loop
        import uvloop

        return "uvloop", uvloop.new_event_loop
    except ImportError:
        return "asyncio", asyncio.new_event_loop
