"""Request paths: one canonical form to route on, the raw form to forward.

A path is decoded once (``%2e`` → ``.``, ``%2f`` → ``/``; a backslash counts
as a slash, as IIS and Windows backends read it) and its dot-segments are
resolved. Routing uses that canonical form; the bytes forwarded upstream are
the client's own, with only the route prefix replaced.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote_to_bytes

from portico.errors import Layer, ProxyError


def bad_path(message: str) -> ProxyError:
    return ProxyError(400, Layer.CLIENT, message)


# Byte needles are ints (see policy/forwarded.py's _UNDERSCORE).
_PERCENT: Final = ord("%")
_BACKSLASH: Final = ord("\\")


def needs_decoding(path: bytes) -> bool:
    return _PERCENT in path or _BACKSLASH in path or path.find(b"/.") >= 0


def decode_path(raw: bytes) -> bytes:
    """Percent-decode once; backslash → slash; NUL is refused."""
    decoded = unquote_to_bytes(raw) if _PERCENT in raw else raw
    if 0 in decoded:
        raise bad_path("NUL in request path")
    return decoded.replace(b"\\", b"/")


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 §5.2.4 on an absolute path; ``..`` at the root stays at the root."""
    out: list[bytes] = []
    segments = path.split(b"/")[1:]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == b".":
            if last:
                out.append(b"")
        elif segment == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
        else:
            out.append(segment)
    return b"/" + b"/".join(out)


def climbs_above_root(path: bytes) -> bool:
    """True when a ``..`` segment in ``path`` would rise above its first ``/``."""
    depth = 0
    for segment in path.split(b"/")[1:]:
        if segment == b"..":
            if depth == 0:
                return True
            depth -= 1
        elif segment != b".":
            depth += 1
    return False


def under_prefix(path: bytes, prefix: bytes) -> bool:
    """Whole-segment prefix test: ``/myapp`` covers ``/myapp`` and ``/myapp/x`` only."""
    if not prefix:
        return True
    return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == 0x2F)


def raw_index(raw: bytes, decoded_length: int) -> int:
    """Index in ``raw`` where its first ``decoded_length`` decoded bytes end."""
    index = 0
    produced = 0
    while produced < decoded_length and index < len(raw):
        if raw[index] == 0x25 and _is_hex(raw[index + 1 : index + 3]):
            index += 3
        else:
            index += 1
        produced += 1
    return index


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


def join_upstream(base: bytes, rest: bytes) -> bytes:
    """ProxyPass joining with exactly one slash: (``/``, ``/a``) → ``/a``; (``/``, ``""``) → ``/``.

    A run of slashes at the join is one slash (``/myapp//evil.com/x`` goes as
    ``/evil.com/x``, never ``//evil.com/x``, which an app may read as a host);
    the rest of the path is forwarded byte-exact.
    """
    if rest.startswith(b"//"):
        rest = b"/" + rest.lstrip(b"/")
    if not rest:
        return base or b"/"
    if base.endswith(b"/"):
        return base[:-1] + rest if rest.startswith(b"/") else base + rest
    return base + rest if rest.startswith(b"/") else base + b"/" + rest
