"""What the running portico needs of ``[admin]``: plain data, no pydantic (config/plan.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class AdminPlan:
    """``[admin]`` resolved: the TCP listener (if any) and the API's bounds."""

    listen: str | None = None  # "http://127.0.0.1:9090"; None: the Unix socket only
    allowed_hosts: list[str] = field(default_factory=list)  # beyond the loopback names
    cert: Path | None = None  # the TCP listener's TLS certificate and key (https://)
    key: Path | None = None
    client_ca: Path | None = None  # mutual TLS: client certificates signed by these CAs
    history: int = 10  # applied configs kept for rollback
    watch: float = 10.0  # seconds a config apply is watched before it is kept; 0: off
    max_body_size: int = 1 << 20
    request_timeout: float = 30.0
    session_timeout: float = 1800.0  # idle seconds before a browser session ends
