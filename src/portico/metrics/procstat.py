"""CPU time and resident memory of an app's process tree (its process group), from /proc.

Each app runs in a session of its own (supervisor/process.py), so its process
group is its server and every worker it forked. Linux only; elsewhere None.
"""

from __future__ import annotations

import os
import sys

from portico.procfs import process_stats

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def group_usage(pgid: int) -> tuple[float, int] | None:
    """(CPU seconds, user and system, of the live processes; resident bytes) of the
    process group ``pgid``; None where /proc cannot tell."""
    if not sys.platform.startswith("linux"):
        return None
    cpu, rss = 0.0, 0
    for fields in process_stats():
        if len(fields) < 22 or fields[2] != str(pgid):
            continue
        cpu += (int(fields[11]) + int(fields[12])) / _TICKS
        rss += int(fields[21]) * _PAGE
    return cpu, rss
