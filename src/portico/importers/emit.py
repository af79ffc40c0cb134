"""The importer's model written as a portico TOML config, with tomlkit.

Keys a rule leaves at its dialect's default are not written, so the output reads
like the source (docs/guide/rewrite.md: "an importer writes only what the source
file said"). What was read but needs nothing in portico, and with
``--allow-partial`` what could not be translated, become comments at the top.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any
from urllib.parse import urlsplit

import tomlkit
from tomlkit.items import AoT, Array, InlineTable, Table

from portico.importers.model import Condition, Imported, OutboundRule, Problem, Route, Rule

_APACHE_FLAG_KEYS = {"C": "chain", "N": "restart", "B": "escape_backreferences",
                     "NE": "no_escape"}


def emit(imported: Imported, allow_partial: bool = False) -> str:
    """The portico config text; problems must be empty unless ``allow_partial``."""
    problems = list(imported.problems)
    rules = [(rule, _rule(rule, problems)) for rule in imported.rules]
    if problems and not allow_partial:
        raise Untranslated(problems)
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"portico config imported from {imported.source} "
                            f"(portico import {imported.dialect})"))
    for note in imported.notes:
        doc.add(tomlkit.comment(f"  {note.origin}: {note.reason}"))
    for problem in problems:
        doc.add(tomlkit.comment(f"NOT TRANSLATED {problem}"))
        for line in _quoted(problem.text):
            doc.add(tomlkit.comment(f"    {line}"))
    if imported.listen:
        server = tomlkit.table()
        server["listen"] = imported.listen
        doc["server"] = server
    if imported.certificates:
        tls = tomlkit.table()
        certificates = tomlkit.aot()
        for certificate in imported.certificates:
            table = tomlkit.table()
            table.add(tomlkit.comment(str(certificate.origin)))
            table["hosts"] = certificate.hosts
            table["cert"] = certificate.cert
            table["key"] = certificate.key
            certificates.append(table)
        tls["certificate"] = certificates
        doc["tls"] = tls
    if imported.routes:
        routes = tomlkit.aot()
        for route in imported.routes:
            routes.append(_route(route))
        doc["route"] = routes
    rewrite = _rewrite(imported, [table for _, table in rules if table is not None])
    if rewrite is not None:
        doc["rewrite"] = rewrite
    return tomlkit.dumps(doc)


class Untranslated(Exception):
    """What could not be translated; the CLI prints one line each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def _quoted(text: str, most: int = 20) -> list[str]:
    """The untranslated source, its continuation lines dedented under its first."""
    first, *rest = text.splitlines() or [""]
    lines = [first.strip(), *textwrap.dedent("\n".join(rest)).splitlines()]
    if len(lines) > most:
        lines = [*lines[: most - 1], f"... ({len(lines) - most + 1} more lines)"]
    return [line.rstrip() for line in lines]


def _inline(values: dict[str, Any]) -> InlineTable:
    table = tomlkit.inline_table()
    table.update(values)
    return table


def _route(route: Route) -> Table:
    table = tomlkit.table()
    table.add(tomlkit.comment(str(route.origin)))
    table["path"] = route.path
    if route.host:
        table["host"] = route.host
    table["upstream"] = route.upstream
    if route.preserve_host:
        table["preserve_host"] = True
    for key, set_, add, remove in (
            ("request_headers", route.request_set, route.request_add, route.request_remove),
            ("response_headers", route.response_set, route.response_add, route.response_remove)):
        ops: dict[str, Any] = {}
        if set_:
            ops["set"] = _inline(set_)
        if add:
            ops["add"] = _inline({k: v[0] if len(v) == 1 else v for k, v in add.items()})
        if remove:
            ops["remove"] = remove
        if ops:
            table[key] = _inline(ops)
    return table


def _rule(rule: Rule, problems: list[Problem]) -> Table | None:
    """One ``[[rewrite.rule]]``, or None and a problem."""
    iis = rule.dialect == "iis"
    table = tomlkit.table()
    table.add(tomlkit.comment(str(rule.origin)))
    table["name"] = rule.name
    table["dialect"] = rule.dialect
    if rule.host:
        table["host"] = rule.host
    table["pattern"] = rule.pattern
    if rule.syntax != "regex":
        table["syntax"] = rule.syntax
    if rule.negate:
        table["negate"] = True
    if rule.ignore_case != iis:
        table["ignore_case"] = rule.ignore_case
    if rule.conditions:
        ors = [condition.or_next for condition in rule.conditions[:-1]]
        if any(ors) and not all(ors):
            problems.append(Problem(rule.origin, "RewriteCond lines mixing [OR] and AND are "
                                    "not translated: use all [OR] or none"))
            return None
        conditions = tomlkit.array()
        conditions.multiline(True)
        for condition in rule.conditions:
            conditions.append(_condition(condition, iis))
        table["conditions"] = conditions
        if rule.match_any or (not iis and any(ors)):
            table["match_any"] = True
    if rule.track_all_captures:
        table["track_all_captures"] = True
    action = rule.action
    kind: str = action.type
    if kind == "rewrite" and rule.dialect == "apache" and re.match(r"(?i)https?://",
                                                                    action.url):
        kind = "proxy"  # [P] (a foreign host without it is a redirect, decided in the parser)
    if kind != "rewrite":
        table["action"] = kind
    if kind in ("rewrite", "proxy", "redirect"):
        table["url"] = action.url
    if action.status is not None:
        table["status"] = action.status
    if action.reason:
        table["reason"] = action.reason
    if action.body:
        table["body"] = action.body
    if action.append_query is not None and kind in ("rewrite", "proxy", "redirect"):
        default = True if iis else None
        if action.append_query != default:
            table["query"] = "append" if action.append_query else "replace"
    if rule.stop and kind in ("rewrite", "proxy", "none"):
        table["stop"] = True
    for flag, value in rule.flags.items():
        if flag in _APACHE_FLAG_KEYS:
            table[_APACHE_FLAG_KEYS[flag]] = True
        elif flag == "S" and value.isdigit():
            table["skip"] = int(value)
        elif flag == "END":
            table["stop"] = True
        else:
            problems.append(Problem(rule.origin, f"[{flag}] is not translated"))
            return None
    if rule.request_headers:
        table["request_headers"] = _inline(rule.request_headers)
    return table


def _condition(condition: Condition, iis: bool) -> InlineTable:
    values: dict[str, Any] = {"input": condition.input}
    if condition.pattern or condition.match_type == "pattern":
        values["pattern"] = condition.pattern
    if condition.match_type != "pattern":
        values["match_type"] = condition.match_type
    if condition.negate:
        values["negate"] = True
    if condition.ignore_case != iis:
        values["ignore_case"] = condition.ignore_case
    return _inline(values)


def _outbound(rule: OutboundRule) -> Table:
    table = tomlkit.table()
    table.add(tomlkit.comment(str(rule.origin)))
    table["name"] = rule.name
    table["header"] = rule.header
    table["pattern"] = rule.pattern
    if rule.negate:
        table["negate"] = True
    if not rule.ignore_case:
        table["ignore_case"] = False
    table["value"] = rule.value
    if rule.stop:
        table["stop"] = True
    return table


def _rewrite(imported: Imported, rules: list[Table]) -> Table | None:
    if not (rules or imported.outbound or imported.maps):
        return None
    rewrite = tomlkit.table()
    hosts = _proxy_hosts(imported)
    if hosts:
        rewrite.add(tomlkit.comment("origins the rules proxy to (ARR, [P]), besides routes'"))
        rewrite["proxy_hosts"] = hosts
    if imported.maps:
        maps = tomlkit.aot()
        for rewrite_map in imported.maps:
            table = tomlkit.table()
            table.add(tomlkit.comment(str(rewrite_map.origin)))
            table["name"] = rewrite_map.name
            if rewrite_map.function:
                table["function"] = rewrite_map.function
            if rewrite_map.file:
                table["file"] = rewrite_map.file
            if rewrite_map.entries:
                table["entries"] = _inline(rewrite_map.entries)
            if rewrite_map.default:
                table["default"] = rewrite_map.default
            if rewrite_map.ignore_case:
                table["ignore_case"] = True
            maps.append(table)
        rewrite["map"] = maps
    if rules:
        aot = tomlkit.aot()
        for table in rules:
            aot.append(table)
        rewrite["rule"] = aot
    if imported.outbound:
        outbound = tomlkit.aot()
        for rule in imported.outbound:
            outbound.append(_outbound(rule))
        rewrite["outbound"] = outbound
    return rewrite


def _proxy_hosts(imported: Imported) -> Array | None:
    """``host:port`` of every absolute rule target not already a route's upstream."""
    served = set()
    for route in imported.routes:
        parts = urlsplit(route.upstream or "")
        served.add(_origin(parts.scheme, parts.hostname or "", parts.port))
    hosts: list[str] = []
    for rule in imported.rules:
        if rule.action.type != "rewrite" or not re.match(r"(?i)https?://", rule.action.url):
            continue
        parts = urlsplit(rule.action.url)
        try:
            port = parts.port
        except ValueError:
            port = None
        origin = _origin(parts.scheme, parts.hostname or "", port)
        if origin not in served and origin not in hosts and "{" not in origin and (
                "$" not in origin and "%" not in origin):
            hosts.append(origin)
    if not hosts:
        return None
    array = tomlkit.array()
    array.extend(hosts)
    return array


def _origin(scheme: str, host: str, port: int | None) -> str:
    return f"{host}:{port or (443 if scheme.lower() == 'https' else 80)}"


__all__ = ["AoT", "Untranslated", "emit"]
