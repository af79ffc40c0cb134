"""A backend: one address portico connects to, ``scheme://host:port`` with its TLS.

A route points at a backend and keeps its own base path; two routes to the same
address share one backend. The runtime keeps one ``Backend`` per address in its
``UpstreamPool`` across reloads, so what it knows of the address (idle
connections, requests in flight, failed connects) outlives a config reload
that does not change the address.
"""

from __future__ import annotations

import ipaddress
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl

    from portico.upstream.availability import Availability
    from portico.upstream.connection import UpstreamConnection

Key = tuple[str, str, int, str]  # scheme, host, port, TLS identity label


class Backend:
    """Where requests go: ``scheme://host:port``, and what is known of it meanwhile.

    The address is fixed once made; the state is the pool's and the exchanges'.
    """

    __slots__ = (
        "address",
        "authority",
        "down_until",
        "drained",
        "fails",
        "fails_since",
        "failures",
        "gate",
        "host",
        "idle",
        "in_flight",
        "key",
        "label",
        "port",
        "reason",
        "resolve_at",
        "retired",
        "scheme",
        "tls",
    )

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        tls_label: str = "",
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.tls = tls  # client context for an https backend
        self.key: Key = (scheme, host, port, tls_label)  # the address, TLS identity included
        default = 443 if scheme == "https" else 80
        bracketed = f"[{host}]" if ":" in host else host
        text = bracketed if port == default else f"{bracketed}:{port}"
        self.authority = text.encode("ascii")  # what the Host header carries
        self.label = text  # for logs
        self.idle: list[UpstreamConnection] = []  # pooled, most recently used last
        self.in_flight = 0  # connections lent to requests
        self.failures = 0  # connects failed in a row
        # Passive health (upstream/health.py), counted by the requests of balanced routes:
        # ``fails`` since ``fails_since``, out until ``down_until``, ``reason``: why. (An
        # active check's verdict is per check: upstream/probes.py, ``pool.checks``.)
        self.fails = 0
        self.fails_since = 0.0
        self.down_until = 0.0
        self.reason = ""
        self.drained = False  # by the admin API (server/backend_drain.py): down_until is inf
        # Where to connect, and when to look the name up again (an IP literal: never).
        self.address: tuple[str, int] | None = None
        self.resolve_at = 0.0
        if _is_ip(host):
            self.address, self.resolve_at = (host, port), math.inf
        self.retired = False  # no route names it any more: nothing is pooled again
        # A supervised app's availability gate, for the app at this address (build_routes);
        # its supervisor moves it. None: the address is always tried.
        self.gate: Availability | None = None

    def lent(self, conn: UpstreamConnection) -> UpstreamConnection:
        """Count ``conn`` as in use by a request until it is returned or dropped."""
        conn.lent = True
        self.in_flight += 1
        return conn

    def returned(self, conn: UpstreamConnection) -> None:
        """``conn`` is no longer in use by a request (pooled again or closed)."""
        if conn.lent:
            conn.lent = False
            self.in_flight -= 1

    def drop(self, conn: UpstreamConnection) -> None:
        """``conn`` closed: it is neither in use nor pooled any more."""
        self.returned(conn)
        idle = self.idle
        if idle and conn in idle:
            idle.remove(conn)

    def close_idle(self) -> None:
        idle = self.idle
        while idle:
            idle.pop().abort()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Backend({self.scheme}://{self.label})"

    def origins(self) -> tuple[bytes, ...]:
        """Absolute-URL forms a backend may use for itself, lower-cased."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        forms = [f"{self.scheme}://{host}:{self.port}"]
        if self.port == default:
            forms.append(f"{self.scheme}://{host}")
        return tuple(form.lower().encode("ascii") for form in forms)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
