"""Access log: one line per request, formatted and written in batches.

``record`` only appends a tuple; lines are formatted and written together
when the batch fills or the gateway's clock ticks, so the request path pays
for neither string formatting nor a write per request.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import BinaryIO, Final, Protocol

_UNSAFE: Final = re.compile(rb'[^\x20-\x7e]|["\\]')
# Printable ASCII but the quote and backslash: what a log line may carry as it is.
_PLAIN: Final = bytes([c for c in range(0x20, 0x7F) if c not in b'"\\'])


def _plain(value: bytes) -> bool:
    """No byte needs escaping (one C pass: deleting every plain byte leaves nothing)."""
    return not value.translate(None, _PLAIN)
# remote, method, target, version, status, sent, referer, agent, request id, route, upstream
Fields = tuple[bytes, bytes, bytes, bytes, int, int, bytes, bytes, bytes, bytes, bytes]
# route index (-1: none), method, status, bytes sent, bytes received: what metrics count
Outcome = tuple[int, bytes, int, int, int]


class Loggable(Protocol):
    """The completion record of a finished exchange, which every log sink reads: the
    access log its ``log_fields`` (when the batch is written), metrics its ``outcome``
    (at once). An ``Exchange`` is one; so is an ``Answered`` (a request answered
    before it became an exchange: proxy/dispatch.py)."""

    def log_fields(self) -> Fields: ...

    def outcome(self) -> Outcome: ...


class LogSink:
    """The ``log`` phase: told of every finished exchange (the access log is the first,
    metrics, when on, the second). ``flush`` runs on the gateway's clock tick."""

    def record_exchange(self, exchange: Loggable, duration: float) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        return None


class Answered:
    """The completion record of a request answered before it became an exchange (a
    redirect, a 404, a 413): its fields known at once."""

    __slots__ = ("fields", "route_index")

    def __init__(self, fields: Fields, route_index: int) -> None:
        self.fields = fields
        self.route_index = route_index

    def log_fields(self) -> Fields:
        return self.fields

    def outcome(self) -> Outcome:
        fields = self.fields
        return self.route_index, fields[1], fields[4], fields[5], 0


class AccessLog(LogSink):
    """``target`` is a path, ``"-"`` for stdout, or ``"off"``; ``fmt`` is combined or json.

    Entries wait in one queue, in the order requests ended, and are formatted and
    written in batches (``batch`` entries, or the gateway's clock tick). Batches stay
    small: formatting 512 lines at once stalled the loop ~0.5 ms and doubled p99."""

    def __init__(self, target: str, fmt: str, batch: int = 64) -> None:
        self.enabled = target != "off"
        self._json = fmt == "json"
        self._batch = batch
        self._pending: list[tuple[float, float, Loggable]] = []
        self._stream: BinaryIO | None = None
        if self.enabled:
            self._stream = sys.stdout.buffer if target == "-" else open(target, "ab")  # noqa: SIM115

    def record_exchange(self, exchange: Loggable, duration: float) -> None:
        """The hot-path form: keep the exchange, read its fields at flush time."""
        self._pending.append((time.time(), duration, exchange))
        if len(self._pending) >= self._batch:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending or self._stream is None:
            return
        fmt = _json_line if self._json else _combined_line
        data = b"".join([fmt(when, item.log_fields(), dt) for when, dt, item in pending])
        try:
            self._stream.write(data)
            self._stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        self.flush()
        if self._stream is not None and self._stream is not sys.stdout.buffer:
            self._stream.close()
        self._stream = None


_stamp_cache: dict[int, bytes] = {}


def _stamp(when: float) -> bytes:
    second = int(when)
    stamp = _stamp_cache.get(second)
    if stamp is None:
        _stamp_cache.clear()
        stamp = _stamp_cache[second] = time.strftime(
            "%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second)
        ).encode()
    return stamp


_LINE: Final = b'%s - - [%s] "%s %s HTTP/%s" %d %d "%s" "%s" rid=%s route=%s upstream=%s dur=%.4f\n'


def _combined_line(when: float, fields: Fields, dt: float) -> bytes:
    remote, method, target, version, status, sent, referer, agent, rid, route, up = fields
    stamp = _stamp(when)
    if _plain(b"".join((method, target, version, referer, agent, rid))):
        return _LINE % (
            remote, stamp, method, target, version, status, sent, referer or b"-",
            agent or b"-", rid, route or b"-", up or b"-", dt,
        )
    return _LINE % (
        remote, stamp, _safe(method), _safe(target), _safe(version), status, sent,
        _safe(referer) or b"-", _safe(agent) or b"-", _safe(rid), route or b"-", up or b"-", dt,
    )


def _json_line(when: float, fields: Fields, dt: float) -> bytes:
    remote, method, target, version, status, sent, referer, agent, rid, route, up = fields
    latin = "latin-1"
    return json.dumps({
        "time": when, "remote": remote.decode(latin), "method": method.decode(latin),
        "target": target.decode(latin), "protocol": "HTTP/" + version.decode(latin),
        "status": status, "bytes": sent, "referer": referer.decode(latin),
        "user_agent": agent.decode(latin), "request_id": rid.decode(latin),
        "route": route.decode(latin), "upstream": up.decode(latin),
        "duration_ms": round(dt * 1000, 3),
    }).encode() + b"\n"


def _safe(value: bytes) -> bytes:
    """Log-safe bytes: quotes, backslashes and non-printables escaped, never a raw newline."""
    if _plain(value):
        return value
    return _UNSAFE.sub(lambda m: b"\\x%02x" % m.group()[0], value)
