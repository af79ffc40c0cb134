"""Size limits on a message head, enforced by every parser adapter.

``HeadLimits`` is declared with the other settings in portico/settings.py; a
response from an upstream gets the wider ``RESPONSE_LIMITS``.
"""

from __future__ import annotations

from portico.settings import HeadLimits

__all__ = ["RESPONSE_LIMITS", "HeadLimits"]

RESPONSE_LIMITS = HeadLimits(
    max_request_line=8 * 1024, max_header_size=64 * 1024, max_head_size=64 * 1024, max_headers=200
)
