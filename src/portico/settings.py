"""The runtime value types of the config's settings, each declared once, with its default.

The schema (config/schema.py) takes its defaults from these, compile builds them from
the schema under the same field names (the config key's), the plan carries them as
they are, and the serving code reads them: a setting is written in one place. This
module imports nothing heavy (no pydantic): the serving process imports it, and it
is compiled with the request path (setup.py), since the proxy reads these on every
request.
"""

from __future__ import annotations

from dataclasses import dataclass

from portico.errors import Layer, ProxyError


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Size limits on a message head (``[server.limits]``), enforced by every parser."""

    max_request_line: int = 8 * 1024  # beyond it: 414
    max_header_size: int = 8 * 1024  # one field, name and value: 431
    max_head_size: int = 32 * 1024  # all fields together: 431
    max_headers: int = 100  # field count: 431


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    """How long and how much one client connection may take (``[server.limits]``)."""

    head_timeout: float = 10.0  # whole request head, from its first byte: 408
    keepalive_timeout: float = 30.0  # idle between requests: silent close
    max_keepalive_requests: int = 1000  # per client connection
    send_timeout: float = 60.0  # a client that reads nothing of a response this long is dropped
    # Beyond it, new connections are closed at once; None: default_max_connections().
    max_connections: int | None = None
    # At a reload or stop, how long open tunnels stay up before Close 1001 ("going away").
    tunnel_drain_delay: float = 5.0


@dataclass(frozen=True, slots=True)
class RouteLimits:
    """A route's limits: ``[server.limits]``, overridden by the route's ``limits``."""

    max_body_size: int = 10 * 2**20  # beyond it: 413
    body_timeout: float = 30.0  # longest pause between pieces of a request body: 408
    connect_timeout: float = 5.0  # connecting to the upstream: 504
    response_timeout: float = 60.0  # the upstream's response head, and between body reads: 504
    upgrades: tuple[str, ...] = ("websocket",)  # Upgrade protocols tunnelled (lower case)
    tunnel_idle_timeout: float = 300.0  # a tunnel with no byte either way this long is closed
    tunnel_max_lifetime: float = 0.0  # a tunnel open this long is closed (1001); 0: no cap

    def body_too_large(self) -> ProxyError:
        return ProxyError(413, Layer.PROXY, "request body larger than this route allows "
                          f"({self.max_body_size} bytes; limits.max_body_size)")


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """Upstream keep-alive connections (``[server.pool]``)."""

    max_idle: int = 64  # idle connections kept per upstream
    idle_timeout: float = 1.5  # below the backend's keep-alive (gunicorn's is 2 s)


def default_max_connections() -> int:
    """Half the file-descriptor limit (each proxied request holds two), less a margin."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 10_000
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(8, min(soft // 2 - 16, 100_000))


@dataclass(frozen=True, slots=True)
class Http2Settings:
    """HTTP/2 towards clients (``[server.http2]``): ALPN ``h2`` on https listeners and
    h2c with prior knowledge on http ones (server/h2.py)."""

    enabled: bool = True  # off: https offers only http/1.1, a cleartext preface gets 505
    max_concurrent_streams: int = 100  # streams one client connection may have open
