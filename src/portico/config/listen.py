"""Listen addresses, read where no pydantic is loaded (the serving process) too."""

from __future__ import annotations

from urllib.parse import urlsplit


def parse_listen(url: str) -> tuple[str, str, int]:
    """``https://0.0.0.0:8443`` → (scheme, host, port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid listen address {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"invalid listen address {url!r}: use http://HOST:PORT or https://HOST:PORT"
        )
    if not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError(
            f"invalid listen address {url!r}: use http://HOST:PORT, e.g. \"http://127.0.0.1:8080\""
        )
    return parts.scheme, parts.hostname, port
