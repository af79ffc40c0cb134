"""The doctor's middleware: runs inside a hosted app and reports what the app computed.

portico serves a hosted ``wsgi``/``asgi`` app through ``portico.doctor.hook:wsgi`` or
``:asgi`` (supervisor/commands.py), with the real target in ``PORTICO_DOCTOR_APP`` and a
per-run secret in ``PORTICO_DOCTOR_TOKEN``. Every request goes straight to the app; only
a request whose ``X-Portico-Doctor`` header equals the secret is answered here, with JSON
describing the request *as the app saw it after its own middleware ran*:

- WSGI: werkzeug's ProxyFix and DispatcherMiddleware rewrite the environ dict in place, so
  after the inner app returns, the outer environ holds their result; a werkzeug/Flask
  request object left in ``environ["werkzeug.request"]`` is preferred (it is what
  ``url_for`` used). The server's own rewrites (gunicorn's scheme, waitress's trusted
  proxy headers) happened before the app was called and are seen too.
- ASGI: uvicorn's proxy-headers middleware runs before the app (client, scheme) and
  ``--root-path`` sets ``root_path``; Starlette's router updates the scope in place.

The cost for any other request is one dict lookup (WSGI) or one scan of the header
list (ASGI). Nothing of the environ beyond the fields below leaves the process.
This module imports only the standard library at import time: it is loaded by the
app's server, not by portico.
"""

from __future__ import annotations

import hmac
import importlib
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

HEADER = "X-Portico-Doctor"
WSGI_KEY = "HTTP_X_PORTICO_DOCTOR"
ASGI_KEY = b"x-portico-doctor"
TOKEN_ENV = "PORTICO_DOCTOR_TOKEN"
APP_ENV = "PORTICO_DOCTOR_APP"

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _default_port(scheme: str) -> str:
    return "443" if scheme in ("https", "wss") else "80"


def _split_host(host: str, scheme: str) -> tuple[str, str]:
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest.lstrip(":") or _default_port(scheme)
    name, sep, port = host.rpartition(":")
    return (name, port) if sep else (host, _default_port(scheme))


def _root_url(scheme: str, host: str, prefix: str) -> str:
    return f"{scheme}://{host}{prefix.rstrip('/')}/"


def wsgi_view(environ: Environ) -> dict[str, Any]:
    """What a WSGI app computes from ``environ`` (its request object's view, if it left one)."""
    request = environ.get("werkzeug.request")
    if request is not None and getattr(request, "environ", None) is environ:
        scheme, host = request.scheme, request.host
        prefix, client, source = request.script_root, request.remote_addr, "werkzeug.request"
        root = request.url_root
    else:
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or (
            f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}")
        prefix = environ.get("SCRIPT_NAME", "")
        client, source = environ.get("REMOTE_ADDR"), "environ"
        root = _root_url(scheme, host, prefix)
    return {
        "kind": "wsgi", "source": source, "client": client, "scheme": scheme,
        "host": _split_host(host, scheme)[0], "port": _split_host(host, scheme)[1],
        "prefix": prefix.rstrip("/"), "root_url": root,
        "middleware": _wsgi_middleware(environ),
    }


def _wsgi_middleware(environ: Environ) -> list[str]:
    seen = []
    if "werkzeug.proxy_fix.orig" in environ:
        seen.append("werkzeug ProxyFix")
    return seen


def asgi_view(scope: Scope) -> dict[str, Any]:
    """What an ASGI app computes from ``scope``: Starlette's ``request.base_url`` rules."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    scheme = scope.get("scheme", "http")
    server = scope.get("server")
    host = headers.get("host") or (f"{server[0]}:{server[1]}" if server else "")
    prefix = scope.get("app_root_path", scope.get("root_path", ""))
    client = scope.get("client")
    name, port = _split_host(host, scheme)
    return {
        "kind": "asgi", "source": "scope", "client": client[0] if client else None,
        "scheme": scheme, "host": name, "port": port, "prefix": prefix.rstrip("/"),
        "root_url": _root_url(scheme, host, prefix), "middleware": [],
    }


def _answer(view: dict[str, Any], status: str | None, error: str | None) -> bytes:
    view = {**view, "app_status": status, "app_error": error}
    return json.dumps(view).encode()


def _marked(presented: str | bytes | None, token: str) -> bool:
    if not presented or not token:
        return False
    if isinstance(presented, bytes):
        presented = presented.decode("latin-1")
    return hmac.compare_digest(presented, token)


class DoctorWSGI:
    """Wraps a WSGI app; answers the marked request with :func:`wsgi_view` as JSON."""

    def __init__(self, app: WSGIApp, token: str) -> None:
        self.app = app
        self.token = token

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        presented = environ.get(WSGI_KEY)
        if presented is None or not _marked(presented, self.token):
            return self.app(environ, start_response)
        captured: list[str] = []

        def swallow(status: str, headers: list[tuple[str, str]], *_: Any) -> Callable[..., Any]:
            captured.append(status)
            return lambda _data: None

        error = None
        try:
            body = self.app(environ, swallow)
            try:
                for _chunk in body:
                    pass
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # the app's own failure is part of the report
            error = f"{type(exc).__name__}: {exc}"
        payload = _answer(wsgi_view(environ), captured[-1] if captured else None, error)
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(payload))),
                                  ("Cache-Control", "no-store")])
        return [payload]


class DoctorASGI:
    """Wraps an ASGI app; answers the marked HTTP request with :func:`asgi_view` as JSON."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for key, value in scope["headers"]:
            if key == ASGI_KEY and _marked(value, self.token):
                return await self._diagnose(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _diagnose(self, scope: Scope, receive: Receive, send: Send) -> None:
        status: list[str] = []

        async def swallow(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(str(message["status"]))

        error = None
        try:
            await self.app(scope, receive, swallow)
        except Exception as exc:  # the app's own failure is part of the report
            error = f"{type(exc).__name__}: {exc}"
        payload = _answer(asgi_view(scope), status[-1] if status else None, error)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": payload})


class AppNotFound(Exception):
    """The configured ``module:attr`` has no such attribute. Not an AttributeError: the
    server would report the wrapper's attribute (``wsgi``) as the one missing."""


def _target() -> Any:
    spec = os.environ[APP_ENV]
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in (attr or "app").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:  # the servers' own words (gunicorn's)
            raise AppNotFound(f"Failed to find attribute {attr!r} in {module!r}.") from None
    return obj


def __getattr__(name: str) -> Any:
    """``portico.doctor.hook:wsgi`` / ``:asgi``: the target app, wrapped (on first access,
    in the app's process, after its server has set up ``sys.path``)."""
    token = os.environ.get(TOKEN_ENV, "")
    if name == "wsgi":
        return DoctorWSGI(_target(), token)
    if name == "asgi":
        return DoctorASGI(_target(), token)
    raise AttributeError(name)
