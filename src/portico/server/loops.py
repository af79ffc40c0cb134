"""The fastest event loop the platform has: uvloop, winloop, else asyncio's.

``PORTICO_LOOP=asyncio`` forces the standard loop (for comparison, or to work
around a loop bug such as uvloop#548, write buffers kept after a client leaves).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable


def loop_factory() -> tuple[str, Callable[[], asyncio.AbstractEventLoop]]:
    if os.environ.get("PORTICO_LOOP") == "asyncio":
        return "asyncio", asyncio.new_event_loop
    try:
        if sys.platform == "win32":
            import winloop

            return "winloop", winloop.new_event_loop
        import uvloop

        return "uvloop", uvloop.new_event_loop
    except ImportError:
        return "asyncio", asyncio.new_event_loop
