"""The ``log`` phase's metrics sink: plain integer counters, no prometheus_client.

Each serving process counts every finished exchange into one row of ints per
route (``ROW`` wide: requests by method and status class, the duration
histogram's buckets, the duration sum in microseconds, bytes each way). On the
gateway's clock tick (``flush``) the rows that moved are handed to ``send`` as
deltas and zeroed: a worker sends them over its channel to the main process
(server/channel.py ``MetricsDelta``), which sums them (metrics/totals.py), so a
worker's restart loses at most one tick of counts and no total ever decreases.
Nothing here is per-request IPC, a lock or a file.

Labels stay bounded: routes by name, a fixed list of methods (others count as
``OTHER``), status classes ``1xx``..``5xx``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from portico.proxy.accesslog import Loggable, LogSink
from portico.proxy.exchange import Exchange

METHODS: Final = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT",
                  "TRACE", "OTHER")
_METHOD_INDEX: Final[dict[bytes, int]] = {m.encode(): i for i, m in enumerate(METHODS[:-1])}
OTHER_METHOD: Final = len(METHODS) - 1
CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
# seconds; prometheus_client's default buckets (Caddy and Traefik use them too)
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                  10.0)

# A row: requests [method * 5 + class], then histogram buckets (+Inf last), then sums.
# Literal offsets: mypyc leaves a Final tuple unset while the module's other Finals are
# computed from it (NameError at import); tests/unit/test_metrics.py checks them.
REQUESTS_AT: Final = 0
BUCKETS_AT: Final = 50  # len(METHODS) * len(CLASSES)
DURATION_US_AT: Final = 65  # BUCKETS_AT + len(BUCKETS) + 1
SENT_AT: Final = DURATION_US_AT + 1
RECEIVED_AT: Final = DURATION_US_AT + 2
ROW: Final = DURATION_US_AT + 3
UNROUTED: Final = "(none)"  # the route label of answers made before routing

Deltas = dict[str, list[int]]  # route label -> a row of increments
Send = Callable[[Deltas], None]


class RequestMetrics(LogSink):
    """One gateway's counters; ``labels`` by route index (the unrouted row is last)."""

    __slots__ = ("labels", "rows", "send")

    def __init__(self, labels: list[str], send: Send) -> None:
        self.labels = [*labels, UNROUTED]
        self.rows = [[0] * ROW for _ in self.labels]
        self.send = send

    def record_exchange(self, exchange: Loggable, duration: float) -> None:
        if isinstance(exchange, Exchange):  # native attribute reads once compiled
            index, method, status = exchange.route.index, exchange.request.method, \
                exchange.status
            sent, received = exchange.sent, exchange.body_received
        else:  # an Answered: through the completion record's interface
            index, method, status, sent, received = exchange.outcome()
        row = self.rows[index]  # -1: the unrouted row
        kind = status // 100 - 1
        if kind < 0 or kind > 4:
            kind = 4 if status >= 600 else 3  # no answer at all (0): the client's side
        row[_METHOD_INDEX.get(method, OTHER_METHOD) * 5 + kind] += 1
        bucket = 0  # most answers fall in the first buckets: a short native scan
        while bucket < 14 and duration > BUCKETS[bucket]:  # 14: len(BUCKETS)
            bucket += 1
        row[BUCKETS_AT + bucket] += 1
        row[DURATION_US_AT] += int(duration * 1_000_000)
        row[SENT_AT] += sent
        row[RECEIVED_AT] += received

    def flush(self) -> None:
        """Hand the rows that moved since the last tick to ``send`` (an empty dict if
        none did: the receiver may add gauges of its own), and zero them."""
        deltas: Deltas = {}
        for i, row in enumerate(self.rows):
            if any(row):
                label = self.labels[i]
                known = deltas.get(label)
                if known is None:
                    deltas[label] = list(row)
                else:
                    for k in range(ROW):
                        known[k] += row[k]
                self.rows[i] = [0] * ROW
        self.send(deltas)
