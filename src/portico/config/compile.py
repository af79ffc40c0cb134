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

from portico.config.access import access_plan
from portico.config.acquire import checked_certificates, free_ports, issue_self_signed
from portico.config.admin import admin_plan
from portico.config.app_schema import App
from portico.config.auth import basic_auth_plan
from portico.config.balancing import balance_plan, route_backends, with_balance_secret
from portico.config.instances import instance_binds, instance_name
from portico.config.local_plan import NO_BACKEND
from portico.config.local_routes import redirect_plan, static_plan
from portico.config.metrics import metrics_plan
from portico.config.plan import (
    AppPlan,
    HeaderRulesPlan,
    RoutePlan,
    RunPlan,
    ServerPlan,
    ServingPlan,
)
from portico.config.rules_compile import origin_key, rewrite_plan, route_rewrite_plan
from portico.config.schema import Config, HeaderRules
from portico.config.schema import Route as RouteConfig
from portico.errors import ConfigError, key_path
from portico.settings import ClientTimeouts, HeadLimits, Http2Settings, PoolSettings, RouteLimits
from portico.supervisor.commands import interpreter
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
    serving = with_balance_secret(plan.serving, state_dir)
    return dataclasses.replace(
        plan, serving=serving, cert_facts=checked_certificates(plan.serving.certificates))


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
        apps=[app_plan(app, config.route, base_dir) for app in config.app],
        listen=list(config.server.listen),
        workers=config.server.workers,
        base_dir=base_dir,
        state_dir=state_dir,
        config_file=config_file,
        # [[app]] tables are not here: a reload restarts the apps that changed
        # (server/apps.py), and an asgi app whose route prefix moved gets its new
        # --root-path that way (its AppPlan changed)
        restart_only={
            "server.listen": json.dumps(source.server.listen),
            "server.workers": json.dumps(source.server.workers),
            "metrics.listen": json.dumps(source.metrics.listen),
            "admin": json.dumps(source.admin.model_dump(mode="json")),  # its listener
        },
        cert_facts=[],
        admin=admin_plan(config.admin, base_dir),
    )


def with_binds(config: Config, binds: Mapping[str, str]) -> Config:
    """``config`` with every app's ``bind`` set: its own, else ``binds``'s."""
    if all(app.bind is not None for app in config.app):
        return config
    apps = [app if app.bind is not None else app.model_copy(update={"bind": binds[app.name]})
            for app in config.app]
    return config.model_copy(update={"app": apps})


def app_plan(app: App, routes: list[RouteConfig], base_dir: Path | None = None) -> AppPlan:
    """``app`` as the supervisor runs it (its ports assigned, its ``python`` resolved
    against ``base_dir``); ``routes``: the config's."""
    assert app.bind is not None, "ports are assigned first"
    fields = app.model_dump()
    if app.python is not None:
        fields["python"] = interpreter(app.python, base_dir)
    return AppPlan(**fields, root_path=asgi_root_path(app, routes),
                   binds=instance_binds(app.bind, app.instances))


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


def upstream_of(route: RouteConfig, config: Config) -> tuple[Backend, str]:
    """The route's first backend, without a TLS context, and its base path (``portico
    check``)."""
    backends, base = route_backends(route, config)
    first = (backends or NO_BACKEND)[0]
    return Backend(first.scheme, first.host, first.port), base


def serving_plan(config: Config, base_dir: Path, state_dir: Path) -> ServingPlan:
    """What every serving process needs; a missing CA file is a ConfigError naming its key."""
    server, limits = config.server, config.server.limits
    rewrite = rewrite_plan(config.rewrite, base_dir, [
        origin_key(backend.scheme, backend.host, backend.port)
        for route in config.route for backend in route_backends(route, config)[0]],
        _take(RouteLimits, limits))
    routes = []
    for index, route in enumerate(config.route):
        backends, base = route_backends(route, config)
        ca = (base_dir / route.ca) if route.ca else None
        if ca is not None and not ca.is_file():
            raise ConfigError.at(("route", index, "ca"), f"{ca}: no such file")
        routes.append(RoutePlan(
            index=index,
            path=route.path,
            host=route.host,
            app=route.app,
            backends=backends or NO_BACKEND,  # config/local_routes.py
            balance=balance_plan(route),
            base_path=base,
            verify=route.verify,
            ca=ca,
            preserve_path=route.preserve_path,
            preserve_host=route.preserve_host,
            forward_raw_path=route.forward_raw_path,
            request_headers=_rules(route.request_headers),
            response_headers=_rules(route.response_headers),
            limits=RouteLimits(**{
                name: _pick(getattr(route.limits, name), getattr(limits, name))
                for name in _field_names(RouteLimits)}),
            rewrite=route_rewrite_plan(route.rewrite, rewrite, ("route", index, "rewrite")),
            access=access_plan(route.access),
            basic_auth=basic_auth_plan(route.basic_auth),
            redirect=redirect_plan(route),
            static=static_plan(route, base_dir, ("route", index, "static")),
            compress=server.compress if route.compress is None else route.compress,
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
        app_waits={instance_name(app.name, i, app.instances): app.request_wait
                   for app in config.app for i in range(app.instances)},
        certificates=certificate_sources(config, base_dir, state_dir),
        tls_reload_interval=config.tls.reload_interval,
        metrics=metrics_plan(config.metrics),
        rewrite=rewrite,
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
