"""The one gate every admin request passes, before any route (S1-S8, S13).

On the control socket (0600: only its owner can connect) a request is the owner's,
with the ``admin`` scope, as Caddy treats its Unix socket. Over TCP, in order:

1. Host allowlist (DNS rebinding): localhost, 127.0.0.1, [::1] and ``allowed_hosts``,
   with the listener's port; anything else is 403, every path.
2. Cross-origin writes refused: an unsafe method needs ``Sec-Fetch-Site`` same-origin
   or none, else an ``Origin`` equal to this listener's; ``Origin: null`` and
   ``Sec-Fetch-Mode: no-cors`` never pass. A request with a Bearer token and no cookie
   is not a browser's and skips this (Datasette's rule).
3. Authentication: a Bearer API token or a session cookie; the endpoint's scope
   (admin/endpoints.py) must be covered. An undeclared path needs ``admin``: deny by
   default. Without credentials: 401 (an HTML page is sent to the sign-in page).

Every answer carries a strict CSP (no inline script), ``frame-ancestors 'none'``,
``nosniff`` and ``no-store``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from portico.admin.auth import SESSION_COOKIE, Sessions, verify_token
from portico.admin.bridge import EXTENSION
from portico.admin.endpoints import ENDPOINTS, Endpoint, allows
from portico.admin.facade import AdminContext
from portico.admin.plan import LOOPBACK_HOSTS

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # not no-referrer: with it chromium sends Origin: null on same-origin form posts
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
UI_PUBLIC = ("/ui/static/",)  # the UI's vendored assets: no secret in them


def _pattern(path: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^/}]+\}", path)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in parts) + "$")


_COMPILED = [(endpoint, _pattern(endpoint.path)) for endpoint in ENDPOINTS]


def endpoint_for(method: str, path: str) -> Endpoint | None:
    method = "GET" if method == "HEAD" else method
    for endpoint, pattern in _COMPILED:
        if endpoint.method == method and pattern.match(path):
            return endpoint
    return None


def needed_scope(method: str, path: str) -> str:
    """The scope a request needs; deny by default (``admin``) for what is not declared."""
    endpoint = endpoint_for(method, path)
    if endpoint is not None:
        return endpoint.scope
    if path.startswith(UI_PUBLIC):
        return "public"
    if path == "/ui" or path.startswith("/ui/"):
        return "read" if method in SAFE_METHODS else "operate"
    if any(pattern.match(path) for _, pattern in _COMPILED):
        return "read"  # a declared path, another method: the router answers 405
    return "admin"


class Guard:
    def __init__(self, app: App, admin: AdminContext) -> None:
        self.app = app
        self.admin = admin
        self.sessions = Sessions(admin.admin.session_timeout)
        self.allowed = {h.lower() for h in (*LOOPBACK_HOSTS, *admin.admin.allowed_hosts)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        scope["portico.sessions"] = self.sessions
        secured = _with_headers(send)
        transport = scope.get("extensions", {}).get(EXTENSION, {})
        if transport.get("transport") == "unix":
            scope.update({"portico.scope": "admin", "portico.actor": "owner (control socket)",
                          "portico.transport": "unix"})
            await self.app(scope, receive, secured)
            return
        scope["portico.transport"] = "tcp"
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        method, path = scope["method"], scope["path"]
        port = int(transport.get("port") or 0)
        host = headers.get("host", "")
        if not self._host_allowed(host, port):
            await _deny(secured, 403, f"Host {host!r} is not an allowed name for the admin "
                                      "(allowed_hosts in [admin])")
            return
        bearer = headers.get("authorization", "")
        cookie_sid = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        uses_bearer = bearer.lower().startswith("bearer ")
        if method not in SAFE_METHODS and (cookie_sid or not uses_bearer):
            refusal = cross_origin_refusal(headers, scope.get("scheme", "http"), host)
            if refusal:
                await _deny(secured, 403, refusal)
                return
        have, actor = None, None
        if uses_bearer:
            token = verify_token(self.admin.state_dir, bearer[7:].strip())
            if token is None:
                await _deny(secured, 401, "the API token is unknown, revoked or expired")
                return
            have, actor = token.scope, f"token {token.id} ({token.name})"
        elif cookie_sid:
            session = self.sessions.get(cookie_sid)
            if session is not None:
                have, actor = session.scope, session.actor
        endpoint = endpoint_for(method, path)
        if endpoint is not None and endpoint.unix_only:
            await _deny(secured, 403, "only on the control socket (`portico ui`)")
            return
        need = needed_scope(method, path)
        if need != "public":
            if have is None:
                if method == "GET" and "text/html" in headers.get("accept", ""):
                    await _redirect(secured, "/login")
                    return
                await _deny(secured, 401, "sign in (POST /api/login) or send "
                                          "Authorization: Bearer TOKEN")
                return
            if not allows(have, need):
                await _deny(secured, 403, f"this needs the {need!r} scope; yours is {have!r}")
                return
        client = scope.get("client") or ("?", 0)
        scope.update({"portico.scope": have, "portico.actor": actor,
                      "portico.peer": f"{client[0]}:{client[1]}"})
        await self.app(scope, receive, secured)

    def _host_allowed(self, host: str, port: int) -> bool:
        name, given = split_host(host)
        if given and (not given.isdigit() or (port and int(given) != port)):
            return False
        return name in self.allowed


def split_host(host: str) -> tuple[str, str]:
    """("name", "port") of a Host header value; "[::1]:9090" -> ("[::1]", "9090")."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]") + 1
        rest = host[end:]
        return host[:end], rest[1:] if rest.startswith(":") else rest
    name, _, port = host.partition(":")
    return name, port


def cross_origin_refusal(headers: dict[str, str], scheme: str, host: str) -> str | None:
    """Why a write is refused as cross-origin (S3), or None."""
    site = headers.get("sec-fetch-site")
    if headers.get("sec-fetch-mode") == "no-cors":
        return "a no-cors request may not change anything"
    origin = headers.get("origin")
    if origin == "null":
        return "Origin: null may not change anything"
    if site is not None:
        if site in ("same-origin", "none"):
            return None
        return f"cross-site write refused (Sec-Fetch-Site: {site})"
    if origin is not None:
        parts = urlsplit(origin)
        if f"{parts.scheme}://{parts.netloc}".lower() != f"{scheme}://{host}".lower():
            return f"cross-origin write refused (Origin {origin!r})"
    return None  # neither header: not a browser


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _with_headers(send: Send) -> Send:
    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {bytes(name).lower() for name, _ in headers}
            headers += [h for h in SECURITY_HEADERS if h[0] not in names]
            if b"cache-control" not in names:
                headers.append((b"cache-control", b"no-store"))
            message["headers"] = headers
        await send(message)

    return secured


async def _deny(send: Send, status: int, reason: str) -> None:
    import json

    body = json.dumps({"error": reason}).encode() + b"\n"
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    await send({"type": "http.response.start", "status": 303, "headers": [
        (b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})
