"""The main process's sums of every serving process's counters (metrics/counters.py).

Deltas only ever add, so a total never decreases: a worker that dies and is
started again begins from zero and its new deltas add on top.
"""

from __future__ import annotations

from portico.metrics.counters import ROW, Deltas


class Totals:
    """Route label -> the summed row; plus the process-wide counters the main process
    keeps itself (reloads)."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}
        self.reloads = {"success": 0, "failure": 0}
        self.last_reload_ok = True
        self.last_reload_at = 0.0  # unix time of the last successful reload (or start)
        # each live worker's (open connections, requests in flight), as of its last tick
        self.gauges: dict[int, tuple[int, int]] = {}

    def add(self, deltas: Deltas) -> None:
        """Add one process's counters (a worker's deltas, or the main process's own)."""
        for label, delta in deltas.items():
            if len(delta) != ROW:
                continue  # another version's layout: never mix it in
            row = self.rows.get(label)
            if row is None:
                self.rows[label] = list(delta)
            else:
                for k in range(ROW):
                    row[k] += delta[k]

    def reloaded(self, ok: bool, when: float) -> None:
        self.reloads["success" if ok else "failure"] += 1
        self.last_reload_ok = ok
        if ok:
            self.last_reload_at = when
