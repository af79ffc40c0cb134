"""ProxyPassReverse, done safely: Location-type headers and Set-Cookie.

Only values that point at the upstream are touched: its absolute URL, or for
a stripped route a path under its base. A path already under the public
prefix keeps it, so a prefix-aware app (ProxyFix ``x_prefix=1``, uvicorn
``--root-path``) never gets ``/myapp/myapp/...``; of its absolute URL only the
origin is replaced. ``//host``, ``/\\host`` and other hosts pass as
they came, and no rewrite can produce a scheme-relative ``//`` URL.
"""

from __future__ import annotations

from typing import Final

from portico.routing.path import under_prefix
from portico.upstream.backend import Backend

LOCATION_HEADERS: Final = frozenset({b"location", b"content-location", b"uri"})
# Byte needles are ints (see policy/forwarded.py's _UNDERSCORE).
_SEMICOLON: Final = ord(";")
_CR: Final = ord("\r")
_LF: Final = ord("\n")


class ReverseMap:
    """Maps upstream URLs in one route's responses back to public ones."""

    __slots__ = ("_base", "_cookie_domain", "_origins", "_prefix", "_stripped")

    def __init__(self, backend: Backend, base_path: bytes, prefix: bytes, stripped: bool,
                 others: tuple[Backend, ...] = ()) -> None:
        # ``others``: a balanced route's other backends, whose own URLs map back too.
        self._origins = backend.origins() + tuple(o for b in others for o in b.origins())
        self._base = base_path.rstrip(b"/")  # b"" for a base of "/"
        self._prefix = prefix
        self._stripped = stripped
        self._cookie_domain = backend.host.lower().encode("ascii")

    def location(self, value: bytes, public_origin: bytes) -> bytes:
        """Rewrite one Location/Content-Location/URI value, or return it unchanged."""
        if value[:2] in (b"//", b"/\\") or value[:1] == b"\\":
            return value
        if value[:1] == b"/":
            if not self._stripped or self._prefix_aware(value):
                return value
            mapped = self._public_path(value)
            return value if mapped is None else _safe(mapped, value)
        lowered = value[:80].lower()
        for origin in self._origins:
            if lowered.startswith(origin) and value[len(origin) : len(origin) + 1] in (
                b"",
                b"/",
                b"?",
                b"#",
            ):
                rest = value[len(origin) :]
                if rest[:1] != b"/":
                    rest = b"/" + rest
                if self._stripped and self._prefix_aware(rest):
                    return _safe(public_origin + rest, value)  # only the origin is upstream's
                mapped = self._public_path(rest)
                if mapped is None:
                    return value
                return _safe(public_origin + mapped, value)
        return value

    def _prefix_aware(self, upstream_path: bytes) -> bool:
        """A path the app already wrote under the public prefix (``ProxyFix``, uvicorn
        ``--root-path``): kept as it is, never prefixed twice. A path under the upstream's
        own base path is the upstream's, even where the base begins like the prefix
        (``/app`` → ``http://backend/app/v2``: ``/app/v2/x`` is public ``/app/x``)."""
        path = _path_of(upstream_path)
        if self._base and under_prefix(path, self._base):
            return False
        return under_prefix(path, self._prefix)

    def _public_path(self, upstream_path: bytes) -> bytes | None:
        base = self._base
        if base:
            if not under_prefix(_path_of(upstream_path), base):
                return None
            upstream_path = upstream_path[len(base) :]
        if not self._stripped:
            return upstream_path or b"/"
        if upstream_path[:1] not in (b"/", b""):
            upstream_path = b"/" + upstream_path  # "?q" after the base
        mapped = self._prefix + (b"" if upstream_path == b"/" else upstream_path)
        return mapped or b"/"

    def set_cookie(self, value: bytes) -> bytes:
        """Move ``Path=`` under the prefix (ProxyPassReverseCookiePath); drop an upstream Domain."""
        if _SEMICOLON not in value:
            return value
        parts = value.split(b";")
        changed = False
        kept = [parts[0]]
        for attribute in parts[1:]:
            name, _, attr_value = attribute.partition(b"=")
            lname = name.strip().lower()
            if lname == b"path" and self._stripped and self._prefix:
                path = attr_value.strip()
                if path.startswith(b"/") and not under_prefix(path, self._prefix):
                    mapped = self._public_path(path)
                    if mapped is not None:
                        kept.append(b" Path=" + mapped)
                        changed = True
                        continue
            elif (
                lname == b"domain"
                and attr_value.strip().lstrip(b".").lower() == self._cookie_domain
            ):
                changed = True
                continue
            kept.append(attribute)
        return b";".join(kept) if changed else value


def _path_of(value: bytes) -> bytes:
    for mark in (b"?", b"#"):
        at = value.find(mark)
        if at >= 0:
            value = value[:at]
    return value


def _safe(result: bytes, original: bytes) -> bytes:
    if result[:2] in (b"//", b"/\\") or _CR in result or _LF in result or 0 in result:
        return original
    return result
