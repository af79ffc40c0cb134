"""Why an app sees a field wrong, and the setting that fixes it (app side or portico's).

What each server does with portico's forwarded headers (supervisor/commands.py):
gunicorn trusts portico for ``X-Forwarded-Proto`` only (the scheme); waitress is told to
trust portico for For/Host/Proto/Port; uvicorn's ``--proxy-headers`` sets client and
scheme, never the host, and ``--root-path`` is passed for an ASGI app under one stripped
prefix. ``X-Forwarded-Prefix`` is read by nobody but werkzeug's ProxyFix (``x_prefix``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROXYFIX = "werkzeug ProxyFix"


@dataclass
class Context:
    kind: str  # wsgi or asgi
    server: str | None
    preserve_path: bool
    preserve_host: bool
    prefix: str
    middleware: list[str] = field(default_factory=list)


def _proxyfix(ctx: Context, arg: str) -> str:
    if PROXYFIX in ctx.middleware:
        return (f"app: ProxyFix is there but does not apply this header: give it {arg}=1 "
                "(one proxy, portico, in front)")
    return (f"app: wrap it, `app.wsgi_app = ProxyFix(app.wsgi_app, {arg}=1)` "
            "(werkzeug.middleware.proxy_fix; one proxy, portico, in front)")


def fixes(name: str, seen: object, expected: object, ctx: Context) -> list[str]:
    """One line per way to fix ``name`` (``seen`` instead of ``expected``)."""
    explain = _EXPLAIN.get(name)
    return explain(seen, expected, ctx) if explain else []


def _client(seen: object, expected: object, ctx: Context) -> list[str]:
    said = [f"the app sees portico's address ({seen}), not the client's ({expected})"]
    if ctx.kind == "wsgi" and ctx.server != "waitress":
        said.append(_proxyfix(ctx, "x_for"))
    else:
        said.append("app server: it is told to trust X-Forwarded-For from portico's "
                    "address; a server started another way needs --forwarded-allow-ips / "
                    "--trusted-proxy for it")
    return said


def _scheme(seen: object, expected: object, ctx: Context) -> list[str]:
    said = [f"the app builds {seen}:// URLs for a {expected}:// site"]
    if ctx.kind == "wsgi" and ctx.server not in ("gunicorn", "waitress"):
        said.append(_proxyfix(ctx, "x_proto"))
    else:
        said.append("app server: trust X-Forwarded-Proto from portico's address "
                    "(gunicorn --forwarded-allow-ips, uvicorn --proxy-headers)")
    return said


def _host(seen: object, expected: object, ctx: Context) -> list[str]:
    said = [f"the app sees the host {seen}, the client asked for {expected}"]
    if not ctx.preserve_host:
        said.append("portico: `preserve_host = true` on the route sends the client's Host "
                    "to the app (works for every app and server)")
    if ctx.kind == "wsgi" and ctx.server != "waitress":
        said.append(_proxyfix(ctx, "x_host"))
    elif ctx.kind == "asgi":
        said.append("app: uvicorn never reads X-Forwarded-Host; use preserve_host")
    return said


def _port(seen: object, expected: object, ctx: Context) -> list[str]:
    said = [f"the app sees port {seen}, the client used {expected}"]
    if not ctx.preserve_host:
        said.append("portico: `preserve_host = true` on the route (the Host carries the port)")
    if ctx.kind == "wsgi" and ctx.server != "waitress":
        said.append(_proxyfix(ctx, "x_port"))
    return said


def _prefix(seen: object, expected: object, ctx: Context) -> list[str]:
    if seen and expected and str(seen) == str(expected) * 2:
        return [f"the prefix is applied twice ({seen})",
                "app: keep one of ProxyFix(x_prefix=1) and the app's own mount "
                "(DispatcherMiddleware); with preserve_path = true, drop x_prefix"]
    said = [f"the app's root is {seen or '/'} but it is served under {expected or '/'}: "
            "its links and redirects miss the prefix"]
    if ctx.preserve_path:
        said.append(f"app: it gets the full path; mount it under the prefix, "
                    f"`DispatcherMiddleware(NotFound(), {{'{expected}': app}})` "
                    "(werkzeug.middleware.dispatcher), or root_path in an ASGI framework")
        said.append("portico: or drop `preserve_path`, so the prefix is stripped and sent "
                    "as X-Forwarded-Prefix")
    elif ctx.kind == "wsgi":
        said.append(_proxyfix(ctx, "x_prefix"))
    else:
        said.append("portico: an asgi app gets --root-path only when exactly one stripped "
                    "route points at it; give the app one route, or set root_path in the "
                    "app (FastAPI(root_path=...))")
    return said


def _root_url(seen: object, expected: object, ctx: Context) -> list[str]:
    return [f"url_for/url_root gives {seen} instead of {expected}: fix the fields above"]


_EXPLAIN = {"client": _client, "scheme": _scheme, "host": _host, "port": _port,
            "prefix": _prefix, "root_url": _root_url}
