"""Every schema key reaches the plan: set away from its value, it changes what compile makes.

A key that compile forgets (a new schema field not carried into the plan) fails
``test_every_schema_key_reaches_the_plan``, unless it is on ``CHECKED_ONLY``: keys
the config check validates but the running portico never needs.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from portico.config.compile import compile_plan, serving_plan
from portico.config.schema import Config
from portico.settings import ClientTimeouts, HeadLimits, PoolSettings, RouteLimits

# Keys validated but deliberately left out of the plan (none today).
CHECKED_ONLY: set[str] = set()

DELETE = object()  # in an alternative: remove the key from its table

# One of each table; list tables have one item, addressed without its index.
BASE: dict[str, Any] = {
    "server": {"listen": ["http://127.0.0.1:8080", "https://127.0.0.1:8443"]},
    "route": [{"path": "/r", "upstream": "https://10.0.0.1/"}],
    "app": [{"name": "a", "asgi": "m:app"}],
    "tls": {"certificate": [{"hosts": ["a.test"], "cert": "c.pem", "key": "k.pem"}]},
}

# A changed value for the keys whose type gives none (a number gets one more, a
# bool its opposite); a dict changes several keys of the same table at once.
ALTERNATIVES: dict[str, Any] = {
    "server.listen": ["http://127.0.0.1:8081", "https://127.0.0.1:8443"],
    "server.trusted_proxies": ["10.0.0.0/8"],
    "server.access_log": "off",
    "server.log_format": "json",
    "server.hsts": "max-age=1",
    "server.limits.max_connections": 100,
    "route.path": "/s",
    "route.host": "x.test",
    "route.upstream": "https://10.0.0.2/",
    "route.app": {"app": "a", "upstream": DELETE},
    "route.ca": "ca.pem",
    **{f"route.{side}_headers.{op}": value
       for side in ("request", "response")
       for op, value in (("set", {"X-A": "1"}), ("add", {"X-A": ["1", "2"]}),
                         ("remove", ["X-A"]))},
    **{f"route.limits.{name}": 1 for name in
       ("max_body_size", "body_timeout", "connect_timeout", "response_timeout",
        "tunnel_idle_timeout", "tunnel_max_lifetime")},
    "server.limits.upgrades": ["websocket", "h2c"],
    "route.limits.upgrades": [],
    "app.name": "b",
    "app.wsgi": {"wsgi": "m:app", "asgi": DELETE},
    "app.asgi": "n:app",
    "app.command": {"command": ["x"], "asgi": DELETE},
    "app.server": "uvicorn",
    "app.cwd": "d",
    "app.env": {"A": "1"},
    "app.bind": "127.0.0.1:9999",
    "app.health": "/h",
    "tls.certificate.hosts": ["b.test"],
    "tls.certificate.cert": "c2.pem",
    "tls.certificate.key": "k2.pem",
    "tls.certificate.self_signed": {"self_signed": True, "cert": DELETE, "key": DELETE},
}


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the schema that holds a value, not a table: ``server.limits.tick``."""
    keys = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if typing.get_origin(kind) is list:
            kind = typing.get_args(kind)[0]
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys += leaf_keys(kind, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def plan_of(data: dict[str, Any], base_dir: Path) -> str:
    config = Config.model_validate(data)
    binds = {app.name: "127.0.0.1:10001" for app in config.app if app.bind is None}
    plan = compile_plan(config, base_dir, base_dir / "state", None, binds)
    facts = dataclasses.asdict(plan)
    del facts["restart_only"]  # holds the [[app]] tables as written: not what compile made
    return json.dumps(facts, default=str, sort_keys=True)


def changed(key: str, base_dir: Path) -> dict[str, Any]:
    """BASE with ``key`` set to another valid value."""
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    *tables, name = key.split(".")
    table = data
    for part in tables:
        table = table.setdefault(part, {})
        if isinstance(table, list):
            table = table[0]
    if key in ALTERNATIVES:
        value = ALTERNATIVES[key]
    else:
        current = _value_in(Config.model_validate(BASE), key)
        if isinstance(current, bool):
            value = not current
        elif isinstance(current, int | float):
            value = current + 1
        else:
            pytest.fail(f"{key}: no value to change it to; add one to ALTERNATIVES "
                        "(or, if the plan never needs it, the key to CHECKED_ONLY)")
    updates = value if isinstance(value, dict) and key not in _DICT_KEYS else {name: value}
    for update_key, update in updates.items():
        if update is DELETE:
            table.pop(update_key, None)
        else:
            table[update_key] = update
    (base_dir / "ca.pem").write_text("a CA file compile only checks exists\n")
    return data


_DICT_KEYS = {key for key in ALTERNATIVES if key.endswith((".env", "_headers.set", "_headers.add"))}


def _value_in(model: Any, key: str) -> Any:
    for part in key.split("."):
        model = getattr(model, part)
        if isinstance(model, list):
            model = model[0]
    return model


@pytest.mark.parametrize("key", leaf_keys(Config))
def test_every_schema_key_reaches_the_plan(key: str, tmp_path: Path) -> None:
    if key in CHECKED_ONLY:
        return
    if plan_of(changed(key, tmp_path), tmp_path) == plan_of(BASE, tmp_path):
        pytest.fail(f"{key} is in the schema but changing it does not change the plan: "
                    "carry it into config/plan.py in config/compile.py (or put it on "
                    "CHECKED_ONLY)")


def test_schema_defaults_are_the_runtime_types_defaults() -> None:
    plan = serving_plan(Config.model_validate(
        {"route": [{"path": "/", "upstream": "http://127.0.0.1:9/"}]}), Path.cwd(), Path.cwd())
    assert plan.server.head_limits == HeadLimits()
    assert plan.server.client_timeouts == ClientTimeouts()
    assert plan.server.pool == PoolSettings()
    assert plan.routes[0].limits == RouteLimits()
