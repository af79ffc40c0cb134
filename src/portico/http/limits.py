"""Size limits on a message head, enforced by every parser adapter.

``HeadLimits`` is declared with the other settings in portico/settings.py; a
response from an upstream gets the wider ``RESPONSE_LIMITS``.
"""

from __future__ import annotations

from portico.settings import HeadLimits

__all__ = ["RESPONSE_LIMITS", "HeadLimits"]

# No request line in a response: its status line counts in the head (max_head_size),
# and max_request_line (left at its default) is never read for it.
RESPONSE_LIMITS = HeadLimits(max_header_size=64 * 1024, max_head_size=64 * 1024, max_headers=200)
