"""Routes portico answers itself, without an upstream: ``redirect`` and ``static``
(schema, checks and plan; the filters are ``proxy/redirect.py`` and ``proxy/static.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, field_validator

from portico.config.local_plan import RedirectPlan, StaticPlan

if TYPE_CHECKING:
    from portico.config.schema import Route

REDIRECT_STATUSES = (301, 302, 303, 307, 308)


class LocalRouteKeys(BaseModel):
    """The keys of a ``[[route]]`` answered by portico itself (mixed into ``Route``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    redirect: str | None = None
    """Answer every request with a redirect to this URL (absolute, or a path starting
    with ``/``) instead of proxying; the route then has no ``upstream`` or ``app``."""
    redirect_status: int = 302
    """The redirect's status: 301, 302, 303, 307 or 308."""
    redirect_append_path: bool = True
    """Append the rest of the path after the route's prefix to ``redirect`` (as Apache's
    ``Redirect`` does): ``/old/a/b`` → ``https://example.com/new/a/b``."""
    redirect_append_query: bool = True
    """Append the request's query string to the redirect's URL."""
    compress: bool | None = None
    """gzip (brotli when installed) the upstream's responses for clients that accept it:
    text, JSON, JavaScript, XML, SVG of at least 256 bytes (proxy/compress.py). Unset:
    ``server.compress``."""
    static: str | None = None
    """Serve the files of this directory (relative to the config file) instead of
    proxying: GET and HEAD, ETag/Last-Modified, Range, ``.br``/``.gz`` siblings."""
    static_index: list[str] = ["index.html"]
    """Files tried, in order, for a request naming a directory (none: 404, no listing)."""

    @field_validator("static_index")
    @classmethod
    def _index(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name or "/" in name or "\\" in name or name in (".", ".."):
                raise ValueError(f"invalid static_index {name!r}: a file name like "
                                 "\"index.html\", without '/'")
        return names

    @field_validator("redirect")
    @classmethod
    def _redirect(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        absolute = parts.scheme in ("http", "https") and bool(parts.netloc)
        if not (absolute or (url.startswith("/") and not url.startswith("//"))) or any(
                c in url for c in " \t\r\n\x00") or "#" in url:
            raise ValueError(
                f"invalid redirect {url!r}: use an absolute http(s) URL like "
                "\"https://example.com/new\" or a path like \"/new\" (no spaces, no '#')")
        return url

    @field_validator("redirect_status")
    @classmethod
    def _status(cls, status: int) -> int:
        if status not in REDIRECT_STATUSES:
            raise ValueError(f"invalid redirect_status {status}: use one of "
                             f"{', '.join(map(str, REDIRECT_STATUSES))}")
        return status


def answered_locally(route: Route) -> bool:
    """True for a route portico answers itself (it then needs no upstream); a ValueError
    for one that mixes that with a target."""
    if route.redirect is not None and route.static is not None:
        raise ValueError("a route has either 'redirect' or 'static', not both")
    if route.redirect is None and route.static is None:
        return False
    mine = "redirect" if route.redirect is not None else "static"
    targets = [key for key in ("upstream", "upstreams", "app")
               if getattr(route, key) is not None]
    if targets:
        raise ValueError(f"a route with {mine!r} answers itself: remove {targets[0]!r} "
                         f"(or remove {mine!r} to proxy)")
    return True


def redirect_plan(route: Route) -> RedirectPlan | None:
    if route.redirect is None:
        return None
    return RedirectPlan(route.redirect, route.redirect_status, route.redirect_append_path,
                        route.redirect_append_query)


def static_plan(route: Route, base_dir: Path, key: tuple[str | int, ...]) -> StaticPlan | None:
    """A ConfigError (naming ``key``) when the directory is missing."""
    from portico.errors import ConfigError

    if route.static is None:
        return None
    root = base_dir / route.static
    if not root.is_dir():
        raise ConfigError.at(key, f"{root}: no such directory (relative paths are read "
                                  "from the config file's directory)")
    return StaticPlan(root, tuple(route.static_index))
