"""``redirect_to_https``: the 308 a plain-HTTP request gets, to the same URL on https."""

from __future__ import annotations

from portico.http.events import Headers


def https_redirect(host: bytes, target: bytes, https_port: int) -> Headers:
    """The 308's Location: path, prefix and query kept; the Host the client asked for,
    with the https port. The request id and the framing (no body) are added after."""
    path = target if target.startswith(b"/") else b"/"
    return [(b"Location", b"https://" + https_authority(host, https_port) + path)]


def https_authority(host: bytes, https_port: int) -> bytes:
    """``host[:port]`` with the port replaced by the https listener's (none for 443)."""
    if host.startswith(b"["):
        name = host[: host.index(b"]") + 1] if b"]" in host else host
    else:
        name = host.rpartition(b":")[0] if b":" in host else host
    return name if https_port == 443 else name + b":%d" % https_port
