"""Schema → RunPlan: upstreams resolved, limits merged, certificate paths known.

This runs where the config is checked (``portico run`` before it hands over to
the serving process, and the child that checks a reload: config/prepare.py); it
needs pydantic's models. ``compile_plan`` is pure: the same config, directories
and app ports give the same plan (tests/golden). ``run_plan`` wraps it in the
steps that touch the machine (config/acquire.py): picking free ports before it,
issuing self-signed certificates and checking every certificate after it.
config/provision.py turns the plan into the runtime objects, in the main process
and in every worker.

Each runtime value type (portico/settings.py) is built from the table of the
same field names (``_take``): a setting keeps the config key's name throughout.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from portico.config.acquire import checked_certificates, free_ports, issue_self_signed
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
from portico.errors import ConfigError, key_path
from portico.settings import ClientTimeouts, HeadLimits, Http2Settings, PoolSettings, RouteLimits
from portico.supervisor.commands import connect_host, split_bind
from portico.tls.store import CertSource
from portico.upstream.backend import Backend

Log = Callable[[str], None]
T = TypeVar("T")


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
    plan = compile_plan(source, base_dir, state_dir, config_file, free_ports(source, binds))
    issue_self_signed(source, plan.serving.certificates, state_dir, log)
    return dataclasses.replace(
        plan, cert_facts=checked_certificates(plan.serving.certificates))


def compile_plan(
    source: Config,
    base_dir: Path,
    state_dir: Path,
    config_file: Path | None,
    binds: Mapping[str, str],
) -> RunPlan:
    """The plan, certificates not yet checked (``cert_facts`` empty). ``binds``: the
    port of each app that sets no ``bind``, by name."""
    config = with_binds(source, binds)
    return RunPlan(
        serving=serving_plan(config, base_dir, state_dir),
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
        cert_facts=[],
    )


def with_binds(config: Config, binds: Mapping[str, str]) -> Config:
    """``config`` with every app's ``bind`` set: its own, else ``binds``'s."""
    if all(app.bind is not None for app in config.app):
        return config
    apps = [app if app.bind is not None else app.model_copy(update={"bind": binds[app.name]})
            for app in config.app]
    return config.model_copy(update={"app": apps})


def app_plan(app: App, routes: list[RouteConfig]) -> AppPlan:
    """``app`` as the supervisor runs it (its port assigned); ``routes``: the config's."""
    assert app.bind is not None, "ports are assigned first"
    return AppPlan(**app.model_dump(), root_path=asgi_root_path(app, routes))


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


def serving_plan(config: Config, base_dir: Path, state_dir: Path) -> ServingPlan:
    """What every serving process needs; a missing CA file is a ConfigError naming its key."""
    server, limits = config.server, config.server.limits
    routes = []
    for index, route in enumerate(config.route):
        scheme, host, port, base = upstream_address(route, config)
        ca = (base_dir / route.ca) if route.ca else None
        if ca is not None and not ca.is_file():
            raise ConfigError.at(("route", index, "ca"), f"{ca}: no such file")
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
            limits=RouteLimits(**{
                name: _pick(getattr(route.limits, name), getattr(limits, name))
                for name in _field_names(RouteLimits)}),
        ))
    return ServingPlan(
        server=_take(
            ServerPlan, server,
            trusted_proxies=list(server.trusted_proxies),
            head_limits=_take(HeadLimits, limits),
            client_timeouts=_take(ClientTimeouts, limits),
            pool=_take(PoolSettings, server.pool),
            http2=_take(Http2Settings, server.http2),
        ),
        routes=routes,
        app_waits={app.name: app.request_wait for app in config.app},
        certificates=certificate_sources(config, base_dir, state_dir),
        tls_reload_interval=config.tls.reload_interval,
    )


def certificate_sources(config: Config, base_dir: Path, state_dir: Path) -> list[CertSource]:
    """The listener's certificate files: a ``self_signed`` one's where
    ``issue_self_signed`` puts it (under the state dir), without issuing it."""
    sources = []
    for index, spec in enumerate(config.tls.certificate):
        if spec.self_signed:
            from portico.tls.authority import leaf_stem  # cryptography: only when needed

            stem = state_dir / "tls" / leaf_stem(spec.hosts)
            cert, key = stem.with_name(f"{stem.name}.pem"), stem.with_name(f"{stem.name}.key")
        else:
            assert spec.cert is not None and spec.key is not None
            cert, key = base_dir / spec.cert, base_dir / spec.key
        where = key_path(("tls", "certificate", index))
        sources.append(CertSource(tuple(spec.hosts), cert, key, where))
    return sources


def _take(kind: type[T], table: BaseModel, **derived: Any) -> T:
    """A ``kind`` (a dataclass) with each field the table's of the same name, but those
    given in ``derived``."""
    given = {name: getattr(table, name) for name in _field_names(kind) if name not in derived}
    return kind(**given, **derived)


def _field_names(kind: type[Any]) -> list[str]:
    return [field.name for field in dataclasses.fields(kind)]


def _rules(rules: HeaderRules) -> HeaderRulesPlan:
    return HeaderRulesPlan(dict(rules.set), dict(rules.add), list(rules.remove))


def _pick(override: T | None, default: T) -> T:
    return default if override is None else override
