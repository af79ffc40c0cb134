"""Memory settings for serving: the collector's and glibc's heap's.

A burst of traffic (many connections, large bodies, TLS buffers) leaves glibc's
heap with free space that it keeps; RSS stays at the burst's peak. Every few
seconds the gateway's clock calls :func:`release`, which frees what the cyclic GC
can and asks glibc to return free pages (``malloc_trim``). Between those calls the
heap keeps what it has (:func:`settle`). Elsewhere (not glibc) it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

RELEASE_INTERVAL = 10.0  # seconds
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20  # uvloop reads up to 256 KiB at a time: all from the heap
TRIM_THRESHOLD = 8 << 20  # free space at the top of the heap kept until release()


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018  # glibc, or nothing
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_glibc = _libc()
_trim: Callable[[int], int] | None = _glibc.malloc_trim if _glibc is not None else None


def settle() -> None:
    """After start-up: objects made so far are never scanned again (``gc.freeze``), and
    young-generation collections run every 10,000 allocations instead of 700. Requests
    make many short-lived tuples and lists that reference counting frees at once; with
    the default threshold the collector spent 8% of a request scanning them."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    _keep_heap()


def _keep_heap() -> None:
    """Fixed heap thresholds instead of glibc's adaptive ones.

    glibc moves its mmap and trim thresholds up to the largest block freed so far.
    The serving process is a fresh interpreter (server/main.py) that has freed none
    larger than a 256 KiB read, so it gave the top of its heap back after nearly
    every large response and faulted it in again for the next: 9,000 ``brk`` calls
    and 280,000 page faults in 4 s of 1 MiB GETs, a third of the throughput. With
    fixed thresholds reads come from the heap and its top stays until ``release``."""
    if _glibc is not None:
        _glibc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        _glibc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def release() -> None:
    gc.collect()
    if _trim is not None:
        _trim(0)
