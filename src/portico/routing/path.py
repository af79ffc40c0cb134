"""Request paths: one canonical form to route on and to forward.

A path is decoded once (``%2e`` → ``.``, ``%2f`` → ``/``; a backslash counts
as a slash, as IIS and Windows backends read it) and its dot-segments are
resolved. Routing uses that decoded form. What is forwarded upstream is the
client's own bytes made canonical as Apache and nginx do (``canonical_path``:
dot-segments removed, repeated slashes merged), never %-decoded, with only the
route prefix replaced.
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
    return (_PERCENT in path or _BACKSLASH in path or path.find(b"/.") >= 0
            or path.find(b"//") >= 0)


_DOT: Final = frozenset((b".", b"%2e"))
_DOTDOT: Final = frozenset((b"..", b".%2e", b"%2e.", b"%2e%2e"))


def canonical_path(raw: bytes) -> bytes:
    """The raw path (no query) with repeated slashes merged and dot-segments removed
    (RFC 3986 §5.2.4, ``%2e`` counting as a dot); every other byte as the client sent
    it, ``%2F`` and all. ``..`` at the root stays at the root."""
    out: list[bytes] = []
    segments = raw.split(b"/")[1:]
    last_index = len(segments) - 1
    for index, segment in enumerate(segments):
        last = index == last_index
        lowered = segment.lower() if _PERCENT in segment else segment
        if lowered in _DOT:
            if last:
                out.append(b"")
        elif lowered in _DOTDOT:
            if out:
                out.pop()
            if last:
                out.append(b"")
        elif segment or last:
            out.append(segment)
    return b"/" + b"/".join(out)


def merge_slashes(path: bytes) -> bytes:
    while path.find(b"//") >= 0:
        path = path.replace(b"//", b"/")
    return path


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


def raw_index(raw: bytes, decoded_length: int, merged: bool = False) -> int:
    """Index in ``raw`` where its first ``decoded_length`` decoded bytes end;
    ``merged``: a run of slashes (or backslashes) decodes to one."""
    index = 0
    produced = 0
    slash = False
    while produced < decoded_length and index < len(raw):
        byte = raw[index]
        if byte == 0x25 and _is_hex(raw[index + 1 : index + 3]):
            index += 3
            byte = int(raw[index - 2 : index], 16)
        else:
            index += 1
        is_slash = byte in (0x2F, _BACKSLASH)
        if not (merged and slash and is_slash):
            produced += 1
        slash = is_slash
    while merged and index < len(raw) and raw[index] in (0x2F, _BACKSLASH) and slash:
        index += 1  # the rest of a run that ended the prefix
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
