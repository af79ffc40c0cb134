"""Errors, each knowing who caused it and what status it maps to.

One place turns a failure into a status code (``status``), in the spirit of
pingora's error source and caddy's ``statusError``: the client's fault is a
4xx, an upstream's fault a 502/504, portico's own limits a 413/414/431/408.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# Where a retryable error came from, which says how to send the request again.
STALE_CONNECTION: Final = 1  # a pooled connection the upstream had closed: connect afresh
APP_DIED: Final = 2  # a supervised app died under the request: connect if up, else wait
APP_REFUSED: Final = 3  # a supervised app refused the connection: wait for its restart
NEXT_BACKEND: Final = 4  # a balanced route's backend failed: try another (proxy/framing.py)


class Layer(StrEnum):
    """Which part of the chain failed; shown on error pages and in the log."""

    CLIENT = "client request"
    PROXY = "portico"
    UPSTREAM = "upstream"


class ConfigError(Exception):
    """A configuration problem: names the file, the key path and what is valid."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {message}")

    @classmethod
    def at(cls, loc: tuple[int | str, ...], message: str, file: str = "") -> ConfigError:
        """The error at the key ``loc`` names: ``("route", 0, "ca")`` is ``route[0].ca``."""
        return cls(file, key_path(loc), message)


def key_path(loc: tuple[int | str, ...]) -> str:
    """('route', 0, 'limits', 'max_body_size') → ``route[0].limits.max_body_size``: the one
    spelling of a key path in messages (pydantic's error locations have the same shape)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


class ProtocolError(Exception):
    """The peer broke HTTP/1.1; ``status`` is the reply we owe a client for it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ProxyError(Exception):
    """A request could not be proxied; carries the status and layer, and whether sending
    the request again may help: ``source``, set where the error is made, the one field a
    retry decision reads (``retryable`` is only its truth)."""

    def __init__(self, status: int, layer: Layer, message: str, *, source: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.layer = layer
        self.source = source  # STALE_CONNECTION, APP_DIED, APP_REFUSED; 0: not retryable
        self.retry_after = 0  # seconds, for a 503's Retry-After (0: none)

    @property
    def retryable(self) -> bool:
        return self.source != 0
