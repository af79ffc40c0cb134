"""``portico explain``: the app-side settings that agree with each route.

A proxy and its app must agree on four things: who the client is (X-Forwarded-For),
the scheme and host it asked for, and where the app is mounted. This module
says, per route, what the app has to do so that they agree (``portico init`` writes
the same advice into the config it makes: config/starter.py).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from portico.config.acquire import free_ports
from portico.config.balancing import upstream_urls
from portico.config.compile import app_plan, with_binds
from portico.config.plan import AppPlan
from portico.config.schema import Config
from portico.config.schema import Route as RouteConfig
from portico.supervisor.commands import app_argv, connect_host, server_of

# uvicorn --root-path puts the stripped prefix back in scope["path"] and sets root_path.
_ROOT_PATH_WORKS = ("FastAPI serves {prefix}/docs, {prefix}/openapi.json and its "
                    "redirects under {prefix} once; set no root_path in the app.")


@dataclass
class Advice:
    title: str
    lines: list[str] = field(default_factory=list)


def explain(config: Config) -> list[Advice]:
    config = with_binds(config, free_ports(config))
    apps = {app.name: app_plan(app, config.route) for app in config.app}
    out = [_route_advice(route, apps.get(route.app or ""), config) for route in config.route]
    for app in apps.values():
        out.append(Advice(f"app {app.name}: how portico starts it",
                          [shlex.join(app_argv(app))]))
    return out


def _route_advice(route: RouteConfig, app: AppPlan | None, config: Config) -> Advice:
    upstreams = ", ".join(upstream_urls(route))  # config/balancing.py: one or several
    target = f"app {app.name} ({server_of(app)})" if app else f"upstream {upstreams}"
    advice = Advice(f"route {route.host or ''}{route.path} -> {target}")
    say = advice.lines.append
    stripped = route.path != "/" and not route.preserve_path
    hops = 2 if config.server.trusted_proxies else 1
    asgi = app is not None and app.asgi is not None
    # An upstream or a ``command`` app may be either kind: it gets both kinds of advice.
    unknown = app is None or server_of(app) == "command"
    if stripped:
        say(f"The app is reached at / and told its public prefix {route.path} in "
            "X-Forwarded-Prefix.")
        if asgi:
            assert app is not None
            if app.root_path == route.path:
                say(f"ASGI: portico starts uvicorn with --root-path {route.path}, so "
                    + _ROOT_PATH_WORKS.format(prefix=route.path))
            else:
                say(f"ASGI: {app.name} is routed under more than one prefix, so uvicorn gets "
                    "no --root-path and FastAPI's docs load /openapi.json from the site root; "
                    "give each prefix its own [[app]].")
        elif unknown:
            say(f"ASGI: start uvicorn with --root-path {route.path}, so "
                + _ROOT_PATH_WORKS.format(prefix=route.path))
        if not asgi:
            say(f"WSGI: app.wsgi_app = ProxyFix(app.wsgi_app, x_for={hops}, x_proto=1, "
                "x_host=1, x_prefix=1)")
    else:
        mount = route.path if route.path != "/" else None
        if mount:
            say(f"The full path is forwarded: the app mounts itself under {mount}.")
            if asgi or unknown:
                say(f"ASGI: outer = Starlette(routes=[Mount({mount!r}, app=app)]), served "
                    "without --root-path (uvicorn would put the prefix in front twice).")
            if not asgi:
                say("WSGI: app.wsgi_app = DispatcherMiddleware(NotFound(), "
                    f"{{{mount!r}: app.wsgi_app}})")
        if not asgi:
            say(f"WSGI: ProxyFix(app.wsgi_app, x_for={hops}, x_proto=1, x_host=1)  "
                "(no x_prefix: nothing is stripped)")
    if route.preserve_host:
        say("Host is the client's own (preserve_host); X-Forwarded-Host carries it too.")
    sets = route.request_headers.set
    if sets:
        say("Also sent: " + ", ".join(f"{name}: {value}" for name, value in sets.items()))
    if app is not None:
        proxy = connect_host(app.bind)
        kind = server_of(app)
        if kind == "waitress":
            say(f"waitress trusts forwarded headers from {proxy} only (--trusted-proxy).")
        elif kind in ("gunicorn", "uvicorn"):
            say(f"{kind} trusts forwarded headers from {proxy} only (--forwarded-allow-ips).")
        else:
            say(f"Your command must trust forwarded headers from {proxy} only.")
    else:
        say("Trust forwarded headers from portico's address only (gunicorn "
            "--forwarded-allow-ips, waitress trusted_proxy), never '*'.")
    if hops == 2:
        say("x_for=2: trusted_proxies is set, so one proxy in front of portico is counted.")
    return advice
