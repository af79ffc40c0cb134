"""Size limits on a message head, enforced by every parser adapter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HeadLimits:
    max_request_line: int = 8 * 1024  # beyond it: 414
    max_header_size: int = 8 * 1024  # one field, name and value: 431
    max_head_size: int = 32 * 1024  # all fields together: 431
    max_headers: int = 100  # field count: 431


RESPONSE_LIMITS = HeadLimits(
    max_request_line=8 * 1024, max_header_size=64 * 1024, max_head_size=64 * 1024, max_headers=200
)
