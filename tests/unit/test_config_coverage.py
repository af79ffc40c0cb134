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

# Keys validated but deliberately left out of the plan: a route's rule may not name a
# host (the route has its own; config/rules.py refuses it), [[rewrite.rule]]'s does.
CHECKED_ONLY: set[str] = {"route.rewrite.rule.host"}

DELETE = object()  # in an alternative: remove the key from its table

# One of each table; list tables have one item, addressed without its index.
BASE: dict[str, Any] = {
    "server": {"listen": ["http://127.0.0.1:8080", "https://127.0.0.1:8443"]},
    "route": [{"path": "/r", "upstream": "https://10.0.0.1/"}],
    "app": [{"name": "a", "asgi": "m:app"}],
    "tls": {"certificate": [{"hosts": ["a.test"], "cert": "c.pem", "key": "k.pem"}]},
}
# The rewrite tables (config/rules.py), top level and per route.
_RULE = {"pattern": "^a(.*)", "url": "/b{R:1}",
         "conditions": [{"input": "{HTTP_HOST}", "pattern": "x"}]}
_OUTBOUND = {"pattern": "^http://a/(.*)", "value": "/{R:1}",
             "conditions": [{"input": "{RESPONSE_CONTENT_TYPE}", "pattern": "text"}]}
BASE["rewrite"] = {"rule": [_RULE], "outbound": [_OUTBOUND],
                   "map": [{"name": "m", "entries": {"a": "b"}}]}
BASE["route"][0]["rewrite"] = {"rule": [_RULE], "outbound": [_OUTBOUND]}
_REWRITE_ALTERNATIVES: dict[str, Any] = {
    **{f"{scope}.rule.{key}": value for scope in ("rewrite", "route.rewrite")
       for key, value in {
           "name": "n", "dialect": "apache", "match_input": "path", "pattern": "^c",
           "syntax": "exact", "ignore_case": False, "action": "none", "url": "/c",
           "status": {"action": "redirect", "status": 307},
           "reason": {"action": "respond", "status": 403, "reason": "No"},
           "body": {"action": "respond", "status": 403, "body": "No"},
           "query": "replace", "negate": {"negate": True, "url": "/b"},
           "request_headers": {"request_headers": {"X-A": "1"}},
           "response_headers": {"response_headers": {"X-A": "1"}},
           "conditions.input": "{HTTPS}", "conditions.pattern": "y",
           "conditions.match_type": "is_file", "conditions.ignore_case": False,
       }.items()},
    **{f"{scope}.outbound.{key}": value for scope in ("rewrite", "route.rewrite")
       for key, value in {
           "name": "n", "dialect": "apache", "header": "Refresh", "pattern": "^c",
           "syntax": "exact", "ignore_case": False, "action": "none", "value": "v",
           "conditions.input": "{HTTPS}", "conditions.pattern": "y",
           "conditions.match_type": "is_file", "conditions.ignore_case": False,
       }.items()},
    "rewrite.rule.host": "x.test",
    "rewrite.map.name": "n",
    "rewrite.map.entries": {"entries": {"a": "c"}},
    "rewrite.map.file": "map.txt",
    "rewrite.map.function": {"function": "tolower", "entries": DELETE},
    "rewrite.map.default": "d",
    "rewrite.proxy_hosts": ["10.0.0.9:80"],
    "rewrite.document_root": "www",
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
    "route.upstreams": {"upstreams": ["https://10.0.0.1/", {"url": "https://10.0.0.2/",
                                                             "weight": 3}],
                        "upstream": DELETE},
    "route.balance": "least_conn",
    "route.balance_key": "X-User",
    "route.unhealthy_status": [503],
    "route.unhealthy_latency": "2s",
    "route.health.path": "/healthz",
    "route.health.expect_status": [204],
    "route.health.expect_body": "ok",
    "route.health.headers": {"X-Probe": "1"},
    "route.access.allow": ["10.0.0.0/8"],
    "route.access.deny": ["10.0.0.9"],
    "route.redirect": {"redirect": "https://e.test/", "upstream": DELETE},
    **{f"route.{key}": {"redirect": "/x", key: value, "upstream": DELETE} for key, value in
       (("redirect_status", 308), ("redirect_append_path", False),
        ("redirect_append_query", False))},
    "route.static": {"static": ".", "upstream": DELETE},
    "route.compress": True,
    "server.compress": True,
    "route.static_index": {"static": ".", "static_index": ["a.htm"], "upstream": DELETE},
    "route.basic_auth": {"basic_auth": {"users": {"a": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"}}},
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
    "metrics.listen": "127.0.0.1:9464",
    "app.args": ["--timeout", "60"],
    "app.python": "venv/bin/python",
    "tls.certificate.hosts": ["b.test"],
    "tls.certificate.cert": "c2.pem",
    "tls.certificate.key": "k2.pem",
    "tls.certificate.self_signed": {"self_signed": True, "cert": DELETE, "key": DELETE},
    "admin.listen": "http://127.0.0.1:9090",
    "admin.allowed_hosts": ["admin.test"],
    "admin.cert": {"listen": "https://127.0.0.1:9443", "cert": "a.pem", "key": "a-key.pem"},
    "admin.key": {"listen": "https://127.0.0.1:9443", "cert": "a.pem", "key": "a-key.pem"},
    "admin.client_ca": {"listen": "https://127.0.0.1:9443", "cert": "a.pem", "key": "k.pem",
                        "client_ca": "ca.pem"},
    **_REWRITE_ALTERNATIVES,
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
    (base_dir / "map.txt").write_text("z c\n")
    return data


_DICT_KEYS = {key for key in ALTERNATIVES
              if key.endswith((".env", "_headers.set", "_headers.add", "health.headers"))}


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


def test_the_apps_guide_instances_example_compiles() -> None:
    """docs/guide/apps.md's instances example: two backends on the range's ports."""
    from portico.config.load import parse

    guide = (Path(__file__).parents[2] / "docs" / "guide" / "apps.md").read_text()
    blocks = [piece.split("```", 1)[0] for piece in guide.split("```toml\n")[1:]]
    text = next(block for block in blocks if "instances = 2" in block)
    plan = compile_plan(parse(text, "apps.md"), Path.cwd(), Path.cwd(), None, {})
    assert [(b.port, b.app) for b in plan.serving.routes[0].backends] == [
        (8100, "web#1"), (8101, "web#2")]
    assert plan.apps[0].binds == ["127.0.0.1:8100", "127.0.0.1:8101"]
    assert plan.apps[0].args == ["--max-requests", "1000"]
