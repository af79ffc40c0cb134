"""Access log: one line per request, written in batches off the hot path."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import IO


class AccessLog:
    """``target`` is a path, ``"-"`` for stdout, or ``"off"``; ``fmt`` is combined or json."""

    def __init__(self, target: str, fmt: str) -> None:
        self.enabled = target != "off"
        self._json = fmt == "json"
        self._lines: list[str] = []
        self._stream: IO[str] | None = None
        if self.enabled:
            self._stream = sys.stdout if target == "-" else open(target, "a", encoding="utf-8")  # noqa: SIM115
        self._second = -1
        self._stamp = ""

    def record(
        self,
        remote: str,
        method: bytes,
        target: bytes,
        version: bytes,
        status: int,
        sent: int,
        referer: bytes,
        agent: bytes,
        request_id: bytes,
        route: str,
        upstream: str,
        duration: float,
    ) -> None:
        if not self.enabled:
            return
        now = time.time()
        if self._json:
            line = json.dumps(
                {
                    "time": now,
                    "remote": remote,
                    "method": method.decode("latin-1"),
                    "target": target.decode("latin-1"),
                    "protocol": "HTTP/" + version.decode("latin-1"),
                    "status": status,
                    "bytes": sent,
                    "referer": referer.decode("latin-1"),
                    "user_agent": agent.decode("latin-1"),
                    "request_id": request_id.decode("latin-1"),
                    "route": route,
                    "upstream": upstream,
                    "duration_ms": round(duration * 1000, 3),
                }
            )
        else:
            second = int(now)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))
            line = (
                f'{remote} - - [{self._stamp}] "{_q(method)} {_q(target)} HTTP/{_q(version)}" '
                f'{status} {sent} "{_q(referer) or "-"}" "{_q(agent) or "-"}" '
                f'rid={_q(request_id)} route={route or "-"} upstream={upstream or "-"} '
                f"dur={duration:.4f}"
            )
        self._lines.append(line)
        if len(self._lines) >= 256:
            self.flush()

    def flush(self) -> None:
        if self._lines and self._stream is not None:
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                pass

    def close(self) -> None:
        self.flush()
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
        self._stream = None


def _q(value: bytes) -> str:
    """Log-safe text: quotes and control bytes escaped, never a raw newline."""
    text = value.decode("latin-1")
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def pid_tag() -> str:
    return str(os.getpid())
