"""``[server.http2]``: the schema of HTTP/2 towards clients (docs/guide/http2.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from portico.settings import Http2Settings

_H2 = Http2Settings()


class Http2(BaseModel):
    """``[server.http2]``: HTTP/2 to clients, over TLS (ALPN ``h2``) and in cleartext with
    prior knowledge (h2c). Each stream is proxied over its own HTTP/1.1 upstream
    connection, with every route rule and limit of HTTP/1.1."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = _H2.enabled
    """Speak HTTP/2 to clients that ask for it; ``false``: HTTP/1.1 only (https listeners
    then offer only ``http/1.1`` in ALPN). Read at start-up for TLS listeners."""
    max_concurrent_streams: int = Field(_H2.max_concurrent_streams, ge=1, le=1000)
    """Streams one client connection may have open at once (each holds one upstream
    connection while it is in flight)."""
