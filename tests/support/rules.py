"""Run rewrite rules directly (config → plan → compiled RuleSet), for table-driven tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from portico.config.rules import RewriteMap, RewriteRule
from portico.config.rules_compile import _map, rule_plans
from portico.routing.path import canonical_path
from portico.routing.rules import RuleSet, RuleState, lookup_of
from portico.routing.variables import RequestVariables


def run_rules(
    rules: list[dict[str, Any]],
    target: str,
    headers: dict[str, str] | None = None,
    maps: list[dict[str, Any]] | None = None,
    scheme: str = "http",
    host: str = "www.mysite.com",
    prefix: str = "",
    document_root: Path | None = None,
    allowed: tuple[str, ...] = ("127.0.0.1:8000",),
) -> RuleState:
    """``target`` (path and query, as sent) through ``rules`` (config tables)."""
    plans = rule_plans([RewriteRule(**rule) for rule in rules], list(allowed), ("rewrite", "rule"))
    lookup = lookup_of([_map(RewriteMap(**m), Path("."), ("map",)) for m in maps or []])
    rule_set = RuleSet(plans, lookup, 10, prefix, document_root)
    raw_path, _, query = target.partition("?")
    path = canonical_path(raw_path.encode("latin-1")).decode("latin-1")
    fields = [(b"Host", host.encode())] + [(k.encode(), v.encode())
                                           for k, v in (headers or {}).items()]
    variables = RequestVariables("GET", target, path, query, fields, host, scheme, "1.1",
                                 "10.0.0.1", "50000", document_root)
    state = RuleState(path, query, trace=True)
    if rule_set.may_match(path.encode("latin-1")):  # as the proxy does: the gate must never skip a match
        rule_set.run(state, variables, lookup)
    return state


def outcome(state: RuleState) -> tuple[str, ...]:
    """What a case checks: (action or "", the URL or location or status)."""
    if state.action == "":
        return ("", state.target)
    if state.action == "proxy":
        return ("proxy", state.upstream_url)
    if state.action == "redirect":
        return ("redirect", str(state.status), state.location)
    if state.action in ("respond", "refuse"):
        return (state.action, str(state.status))
    return (state.action,)
