"""TLS settings, in one place: Mozilla's "intermediate" profile for clients, verified TLS upstream.

TLS 1.2 and 1.3 only; for 1.2 the intermediate ECDHE/AEAD cipher list (the
DHE suites of the profile are left out: no DH parameters are loaded); no
compression or renegotiation. ALPN offers clients ``h2`` then ``http/1.1`` (HTTP/2
turned off: ``http/1.1`` alone); upstreams are asked for ``http/1.1``.
"""

from __future__ import annotations

import ssl
from pathlib import Path

INTERMEDIATE_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
])
ALPN = ["http/1.1"]
SERVER_ALPN = ["h2", "http/1.1"]  # server/protocol.py hands an h2 connection to server/h2.py


def server_context(http2: bool = True) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(INTERMEDIATE_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(SERVER_ALPN if http2 else ALPN)
    return context


def upstream_context(verify: bool, ca: Path | None) -> ssl.SSLContext:
    """For TLS to an upstream: verified against ``ca`` (or the system's CAs), SNI sent."""
    if verify:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(ALPN)
    return context
