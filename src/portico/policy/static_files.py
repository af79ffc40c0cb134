"""What a static file route serves for a request: the file (no way out of the root),
its validators, the precompressed sibling the client accepts, conditional GET and Range.

Pure decisions over ``os.stat`` results; proxy/static.py sends the bytes. The rules are
RFC 9110's (§13 conditional requests, §14 ranges), as nginx applies them to files:
If-None-Match before If-Modified-Since, a single byte range (several: the whole file,
200), If-Range with a strong ETag or the exact Last-Modified date.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote_to_bytes

# Why not starlette.staticfiles, werkzeug's send_file or whitenoise: they do this well but
# speak ASGI/WSGI (a body iterator in a framework's response object); portico answers
# through its own Downstream, in the worker's loop, without a framework. mimetypes (stdlib)
# gives the types and email.utils the HTTP dates.

REFUSED = "refused"  # a dot segment, an encoded separator, NUL, or a symlink out of the root
MISSING = "missing"
ENCODINGS = ((".br", b"br"), (".gz", b"gzip"))  # the sibling preferred first


@dataclass(frozen=True, slots=True)
class Found:
    path: str  # the file to open (a precompressed sibling, if chosen)
    size: int
    mtime: float
    etag: bytes
    content_type: bytes
    encoding: bytes  # b"" or the sibling's Content-Encoding
    varies: bool  # a sibling exists: the answer depends on Accept-Encoding


def locate(root: str, rest: bytes) -> str:
    """The file system path for ``rest`` (the path after the route's prefix, still
    %-encoded) under ``root`` (a real path), or REFUSED. Not checked for existence."""
    if b"%2f" in rest.lower() or b"%5c" in rest.lower() or b"%00" in rest:
        return REFUSED
    decoded = unquote_to_bytes(rest)
    if b"\x00" in decoded or b"\\" in decoded:
        return REFUSED
    segments = [s for s in decoded.split(b"/") if s and s != b"."]
    if b".." in segments:
        return REFUSED
    try:
        names = [os.fsdecode(s) for s in segments]
    except UnicodeDecodeError:
        return REFUSED
    return os.path.join(root, *names)


def inside(root: str, path: str) -> bool:
    """``path`` resolves (symlinks followed) to ``root`` or below it."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def regular(root: str, path: str) -> os.stat_result | None:
    """The stat of a regular file inside ``root``, or None."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) and inside(root, path) else None


def accepted(accept_encoding: bytes | None) -> set[bytes]:
    """The codings a client's Accept-Encoding allows (q=0 refuses one)."""
    found: set[bytes] = set()
    for item in (accept_encoding or b"").split(b","):
        name, _, params = item.strip().partition(b";")
        q = params.strip().lower()
        if q.startswith(b"q=") and q[2:].strip() in (b"0", b"0.", b"0.0", b"0.00", b"0.000"):
            continue
        if name:
            found.add(name.strip().lower())
    if b"*" in found:
        found.update(code for _, code in ENCODINGS)
    return found


def choose(root: str, path: str, st: os.stat_result, accept_encoding: bytes | None) -> Found:
    """The representation to send: a ``.br``/``.gz`` sibling when the client takes it."""
    kind, _ = mimetypes.guess_type(path, strict=False)
    content_type = (kind or "application/octet-stream").encode("ascii")
    if content_type.startswith(b"text/"):
        content_type += b"; charset=utf-8"
    codings = accepted(accept_encoding)
    varies = False
    chosen: tuple[str, os.stat_result, bytes] | None = None
    for suffix, coding in ENCODINGS:
        sibling = regular(root, path + suffix)
        if sibling is None:
            continue
        varies = True
        if chosen is None and coding in codings:
            chosen = (path + suffix, sibling, coding)
    if chosen is not None:
        path, st, encoding = chosen
    else:
        encoding = b""
    etag = b'"%x-%x%s"' % (st.st_mtime_ns, st.st_size, b"-" + encoding if encoding else b"")
    return Found(path, st.st_size, st.st_mtime, etag, content_type, encoding, varies)


def http_date(timestamp: float) -> bytes:
    return formatdate(timestamp, usegmt=True).encode("ascii")


def _date(value: bytes | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _tags(value: bytes) -> list[bytes]:
    return [tag.strip().removeprefix(b"W/") for tag in value.split(b",")]


def not_modified(found: Found, if_none_match: bytes, if_modified_since: bytes) -> bool:
    """304 for a GET/HEAD (RFC 9110 §13.2.2: If-None-Match, with weak comparison, wins
    over If-Modified-Since)."""
    if if_none_match:
        tags = _tags(if_none_match)
        return b"*" in tags or found.etag in tags
    since = _date(if_modified_since)
    return since is not None and int(found.mtime) <= since


def byte_range(found: Found, range_field: bytes,
               if_range: bytes) -> tuple[int, int] | bool | None:
    """The (first, last) byte of a satisfiable single range; None to send it all (no
    Range, several ranges, a syntax Range ignores, a stale If-Range); False: 416."""
    if not range_field:
        return None
    if if_range:
        if if_range.startswith(b'"'):
            if if_range.strip() != found.etag:
                return None
        elif _date(if_range) != int(found.mtime):
            return None
    unit, _, spec = range_field.partition(b"=")
    if unit.strip().lower() != b"bytes" or b"," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition(b"-")
    size = found.size
    if not dash or not (first_text.isdigit() or last_text.isdigit()):
        return None
    if not first_text:  # the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return False
        return max(0, size - suffix), size - 1
    if last_text and not last_text.isdigit():
        return None
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if last_text and int(last_text) < first:
        return None  # invalid: ignored (RFC 9110 §14.1.1)
    if first >= size:
        return False
    return first, last
