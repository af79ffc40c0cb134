"""Give freed memory back to the operating system.

Also the collector's settings for serving (:func:`settle`).

A burst of traffic (many connections, large bodies, TLS buffers) leaves glibc's
heap with free space that it keeps; RSS stays at the burst's peak. Every few
seconds the gateway's clock calls :func:`release`, which frees what the cyclic GC
can and asks glibc to return free pages (``malloc_trim``). Elsewhere it only
collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

RELEASE_INTERVAL = 10.0  # seconds


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_trim = _malloc_trim()


def settle() -> None:
    """After start-up: objects made so far are never scanned again (``gc.freeze``), and
    young-generation collections run every 10,000 allocations instead of 700. Requests
    make many short-lived tuples and lists that reference counting frees at once; with
    the default threshold the collector spent 8% of a request scanning them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def release() -> None:
    gc.collect()
    if _trim is not None:
        _trim(0)
