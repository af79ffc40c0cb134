"""Linux's /proc: each live process's ``stat`` fields, read once for whoever walks them
(the supervisor's "is the group alive", metrics' CPU and RSS of an app's group)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def process_stats() -> Iterator[list[str]]:
    """For each process, the fields of ``/proc/PID/stat`` after "pid (comm)": state
    ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime
    cstime priority nice threads itreal starttime vsize rss ... (proc(5)). Processes
    that end while being read are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        yield stat.rpartition(")")[2].split()
