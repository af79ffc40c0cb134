"""An app's output: into a size-capped rotating file, and to the console with its name.

Rotation is the standard library's ``RotatingFileHandler``; this module only
cuts the byte stream into lines (long lines are split, never held whole).
"""

from __future__ import annotations

import logging
import logging.handlers
from collections import deque
from collections.abc import Callable
from pathlib import Path

Echo = Callable[[str, str], None]  # (app name, line)
MAX_LINE = 16 * 1024


class AppLog:
    def __init__(
        self, name: str, path: Path, max_size: int, backups: int, echo: Echo | None = None
    ) -> None:
        self.name = name
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_size, backupCount=backups, encoding="utf-8", delay=True
        )
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._echo = echo
        self._partial = b""
        self.tail: deque[str] = deque(maxlen=20)  # kept for start-failure messages

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self.line(line.rstrip(b"\r").decode("utf-8", "replace"))

    def line(self, text: str) -> None:
        self.tail.append(text)
        self._handler.handle(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))
        if self._echo is not None:
            self._echo(self.name, text)

    def close(self) -> None:
        if self._partial:
            self.line(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        self._handler.close()
