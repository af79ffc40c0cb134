"""Schema → RunPlan: ports assigned, upstreams resolved, limits merged, certificates
issued and checked.

This runs where the config is checked (``portico run`` before it hands over to
the serving process, and the child that checks a reload: config/prepare.py); it
needs pydantic's models and, for certificates, ``cryptography``.
config/provision.py turns the plan into the runtime objects, in the main process
and in every worker.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from portico.config.plan import (
    AppPlan,
    HeaderRulesPlan,
    RoutePlan,
    RunPlan,
    ServerPlan,
    ServingPlan,
)
from portico.config.schema import App, Config, HeaderRules, parse_upstream
from portico.config.schema import Route as RouteConfig
from portico.errors import ConfigError
from portico.supervisor.commands import connect_host, split_bind
from portico.tls.store import CertError, CertFacts, CertSource, check
from portico.upstream.backend import Backend

Log = Callable[[str], None]


def run_plan(
    source: Config,
    base_dir: Path,
    state_dir: Path,
    config_file: Path | None,
    log: Log,
    binds: dict[str, str] | None = None,
) -> RunPlan:
    """The checked config as ``portico run`` serves it. ``binds`` (a reload) keeps the
    running apps' ports; otherwise an app without ``bind`` gets a free loopback port."""
    config = assign_ports(source, binds or {})
    serving = serving_plan(config, base_dir, state_dir, log)
    return RunPlan(
        serving=serving,
        apps=[app_plan(app, config.route) for app in config.app],
        listen=list(config.server.listen),
        workers=config.server.workers,
        base_dir=base_dir,
        state_dir=state_dir,
        config_file=config_file,
        restart_only={
            "server.listen": json.dumps(source.server.listen),
            "server.workers": json.dumps(source.server.workers),
            "app": json.dumps([app.model_dump(mode="json") for app in source.app]),
            # uvicorn was started with it: a route that moves the app moves its root path.
            **{f"route.path of app {app.name!r} (uvicorn --root-path)":
               asgi_root_path(app, source.route) for app in source.app if app.asgi},
        },
        cert_facts=checked_certificates(serving.certificates),
    )


def checked_certificates(sources: list[CertSource]) -> list[CertFacts]:
    """``check`` each; an unfit one is a ConfigError naming its key."""
    facts = []
    for index, source in enumerate(sources):
        try:
            facts.append(check(source))
        except CertError as exc:
            field = "key" if exc.path == source.key else "cert"
            raise ConfigError("", f"tls.certificate[{index}].{field}", str(exc)) from None
    return facts


def assign_ports(config: Config, binds: dict[str, str] | None = None) -> Config:
    """Fill in every app's ``bind`` left out: from ``binds`` by app name, else a free
    loopback port."""
    if all(app.bind is not None for app in config.app):
        return config
    known = binds or {}
    apps = [
        app if app.bind is not None else app.model_copy(
            update={"bind": known.get(app.name) or f"127.0.0.1:{_free_port()}"})
        for app in config.app
    ]
    return config.model_copy(update={"app": apps})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def app_plan(app: App, routes: list[RouteConfig]) -> AppPlan:
    """``app`` as the supervisor runs it (its port assigned); ``routes``: the config's."""
    assert app.bind is not None, "ports are assigned first"
    return AppPlan(
        name=app.name, wsgi=app.wsgi, asgi=app.asgi,
        command=list(app.command) if app.command is not None else None,
        server=app.server, workers=app.workers, cwd=app.cwd, env=dict(app.env), bind=app.bind,
        health=app.health, start_timeout=app.start_timeout, stop_timeout=app.stop_timeout,
        listener_check=app.listener_check,
        health_interval=app.health_interval, health_timeout=app.health_timeout,
        unhealthy_after=app.unhealthy_after,
        max_restarts=app.max_restarts, restart_window=app.restart_window,
        restart_delay_max=app.restart_delay_max, request_wait=app.request_wait,
        log_max_size=app.log_max_size, log_backups=app.log_backups,
        root_path=asgi_root_path(app, routes),
    )


def asgi_root_path(app: App, routes: list[RouteConfig]) -> str:
    """What portico tells uvicorn (``--root-path``) for an ``asgi`` app: the prefix of
    the routes to it when they all strip the same one, else "".

    The route strips ``/api`` and uvicorn puts it back: ``scope["path"]`` is
    ``/api/docs`` and ``scope["root_path"]`` ``/api``, so Starlette/FastAPI match
    ``/docs`` and build ``/api/openapi.json`` and redirects under ``/api``, once. A
    preserved path would get the prefix twice (the app mounts itself instead), and two
    prefixes cannot be one root path (docs/guide/fastapi.md)."""
    if app.asgi is None:
        return ""
    prefixes = {"" if route.preserve_path or route.path == "/" else route.path
                for route in routes if route.app == app.name}
    return prefixes.pop() if len(prefixes) == 1 else ""


def upstream_address(route: RouteConfig, config: Config) -> tuple[str, str, int, str]:
    """The route's upstream as (scheme, host, port, base path); an app's bind is its address."""
    if route.upstream is not None:
        return parse_upstream(route.upstream)
    app = next(app for app in config.app if app.name == route.app)
    if app.bind is None:  # not assigned yet (``portico check``): shown as port 0
        return "http", "127.0.0.1", 0, "/"
    return "http", connect_host(app.bind), split_bind(app.bind)[1], "/"


def upstream_of(route: RouteConfig, config: Config) -> tuple[Backend, str]:
    """The route's backend, without a TLS context, and its base path (``portico check``)."""
    scheme, host, port, base = upstream_address(route, config)
    return Backend(scheme, host, port), base


def serving_plan(config: Config, base_dir: Path, state_dir: Path, log: Log) -> ServingPlan:
    """What every serving process needs; a missing CA file or bad certificate is a
    ConfigError naming its key."""
    server, limits = config.server, config.server.limits
    routes = []
    for index, route in enumerate(config.route):
        scheme, host, port, base = upstream_address(route, config)
        ca = (base_dir / route.ca) if route.ca else None
        if ca is not None and not ca.is_file():
            raise ConfigError("", f"route[{index}].ca", f"{ca}: no such file")
        overrides = route.limits
        routes.append(RoutePlan(
            index=index,
            path=route.path,
            host=route.host,
            app=route.app,
            scheme=scheme,
            upstream_host=host,
            upstream_port=port,
            base_path=base,
            verify=route.verify,
            ca=ca,
            preserve_path=route.preserve_path,
            preserve_host=route.preserve_host,
            request_headers=_rules(route.request_headers),
            response_headers=_rules(route.response_headers),
            max_body_size=_pick(overrides.max_body_size, limits.max_body_size),
            body_timeout=_pick(overrides.body_timeout, limits.body_timeout),
            connect_timeout=_pick(overrides.connect_timeout, limits.connect_timeout),
            response_timeout=_pick(overrides.response_timeout, limits.response_timeout),
        ))
    return ServingPlan(
        server=ServerPlan(
            hsts=server.hsts,
            redirect_to_https=server.redirect_to_https,
            trusted_proxies=list(server.trusted_proxies),
            forwarded=server.forwarded,
            access_log=server.access_log,
            log_format=server.log_format,
            tick=server.tick,
            drain_timeout=server.drain_timeout,
            max_request_line=limits.max_request_line,
            max_header_size=limits.max_header_size,
            max_head_size=limits.max_head_size,
            max_headers=limits.max_headers,
            head_timeout=limits.head_timeout,
            keepalive_timeout=limits.keepalive_timeout,
            max_keepalive_requests=limits.max_keepalive_requests,
            send_timeout=limits.send_timeout,
            max_connections=limits.max_connections,
            pool_max_idle=server.pool.max_idle,
            pool_idle_timeout=server.pool.idle_timeout,
        ),
        routes=routes,
        app_waits={app.name: app.request_wait for app in config.app},
        certificates=certificate_sources(config, base_dir, state_dir, log),
        tls_reload_interval=config.tls.reload_interval,
    )


def certificate_sources(
    config: Config, base_dir: Path, state_dir: Path, log: Log
) -> list[CertSource]:
    """The listener's certificate files; ``self_signed`` ones are issued now (once)."""
    sources = []
    for index, spec in enumerate(config.tls.certificate):
        where = f"tls.certificate[{index}]"
        if spec.self_signed:
            from portico.tls.authority import issue  # cryptography: only loaded when needed

            issued = issue(state_dir / "tls", spec.hosts)
            if issued.created:
                log(f"tls: {where}: made a certificate for {', '.join(spec.hosts)} from the "
                    f"local CA {issued.ca} (trust it: see `portico cert create --help`)")
            cert, key = issued.cert, issued.key
        else:
            assert spec.cert is not None and spec.key is not None
            cert, key = base_dir / spec.cert, base_dir / spec.key
        sources.append(CertSource(tuple(spec.hosts), cert, key, where))
    return sources


def _rules(rules: HeaderRules) -> HeaderRulesPlan:
    return HeaderRulesPlan(dict(rules.set), dict(rules.add), list(rules.remove))


T = TypeVar("T")


def _pick(override: T | None, default: T) -> T:
    return default if override is None else override
