"""``[rewrite]`` → ``RewritePlan``: dialect defaults resolved, maps read, targets checked.

No rule may reach a network target the config does not name: the host of an
absolute-URL target must be written out (no template in it) and be a route's
upstream, an app's address or one of ``[rewrite] proxy_hosts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from portico.config.rules import OutboundRule, Rewrite, RewriteMap, RewriteRule, RouteRewrite
from portico.config.rules_plan import (
    ConditionPlan,
    MapPlan,
    OutboundPlan,
    RewritePlan,
    RouteRewritePlan,
    RulePlan,
)
from portico.errors import ConfigError

if TYPE_CHECKING:
    from portico.config.schema import Config
from portico.settings import RouteLimits

Where = tuple[str | int, ...]

_DEFAULT_INPUT = {"iis": "path_without_slash", "apache": "path"}
_DEFAULT_QUERY = {"iis": "append", "apache": "keep"}
_DEFAULT_REDIRECT = {"iis": 301, "apache": 302}


def origin_key(scheme: str, host: str, port: int | None) -> str:
    """``host:port`` as proxy targets are compared (lower case, default port filled in)."""
    default = 443 if scheme == "https" else 80
    return f"{host.lower()}:{port or default}"


def rewrite_plan(
    rewrite: Rewrite, base_dir: Path, known_origins: Iterable[str], limits: RouteLimits
) -> RewritePlan:
    """The top-level rules; ``known_origins``: the routes' upstreams and apps as
    ``origin_key`` gives them."""
    allowed = sorted({*known_origins, *(_proxy_host(h) for h in rewrite.proxy_hosts)})
    maps = [_map(m, base_dir, ("rewrite", "map", i)) for i, m in enumerate(rewrite.map)]
    rules = rule_plans(rewrite.rule, allowed, ("rewrite", "rule"))
    outbound = outbound_plans(rewrite.outbound)
    check_templates(rules, outbound, maps, ("rewrite",))
    return RewritePlan(
        rules=rules,
        outbound=outbound,
        maps=maps,
        proxy_hosts=allowed,
        max_rounds=rewrite.max_rounds,
        document_root=str(base_dir / rewrite.document_root) if rewrite.document_root else None,
        limits=limits,
    )


def route_rewrite_plan(
    rewrite: RouteRewrite, server: RewritePlan, where: Where
) -> RouteRewritePlan:
    """A route's rules; ``server``: the ``[rewrite]`` plan (its maps and proxy origins)."""
    plan = RouteRewritePlan(
        rules=rule_plans(rewrite.rule, server.proxy_hosts, (*where, "rule")),
        outbound=outbound_plans(rewrite.outbound),
    )
    check_templates(plan.rules, plan.outbound, server.maps, where)
    return plan


def check_templates(
    rules: Sequence[RulePlan], outbound: Sequence[OutboundPlan], maps: Sequence[MapPlan],
    where: Where,
) -> None:
    """Compile the rules as the engine will (patterns on RE2, templates, variables), so
    that a mistake is a config error naming its key, not a surprise in a worker."""
    from portico.routing.outbound import OutboundRule
    from portico.routing.rules import RuleError, RuleSet, lookup_of

    lookup = lookup_of(maps)
    try:
        RuleSet(rules, lookup)
    except RuleError as exc:
        raise ConfigError.at((*where, "rule", exc.index), str(exc)) from None
    for index, plan in enumerate(outbound):
        try:
            OutboundRule(plan, lookup)
        except ValueError as exc:
            raise ConfigError.at((*where, "outbound", index), str(exc)) from None


def rule_plans(
    rules: Sequence[RewriteRule], allowed: Sequence[str], where: Where
) -> list[RulePlan]:
    plans = []
    for index, rule in enumerate(rules):
        ignore_case = rule.dialect == "iis" if rule.ignore_case is None else rule.ignore_case
        if rule.action in ("rewrite", "proxy") and rule.url is not None:
            _check_target(rule.url, allowed, (*where, index, "url"))
        plans.append(RulePlan(
            name=rule.name or f"rule {index + 1}",
            dialect=rule.dialect,
            host=rule.host.lower() if rule.host else None,
            match_input=rule.match_input or _DEFAULT_INPUT[rule.dialect],
            pattern=rule.pattern,
            syntax=rule.syntax,
            negate=rule.negate,
            ignore_case=ignore_case,
            conditions=[ConditionPlan(
                input=c.input, pattern=c.pattern, match_type=c.match_type, negate=c.negate,
                ignore_case=(rule.dialect == "iis") if c.ignore_case is None else c.ignore_case,
            ) for c in rule.conditions],
            match_any=rule.match_any,
            track_all_captures=rule.track_all_captures,
            action=rule.action,
            url=rule.url,
            status=(rule.status or _DEFAULT_REDIRECT[rule.dialect])
            if rule.action == "redirect" else rule.status,
            reason=rule.reason,
            body=rule.body,
            query=rule.query or _DEFAULT_QUERY[rule.dialect],
            stop=rule.stop,
            chain=rule.chain,
            skip=rule.skip,
            restart=rule.restart,
            escape_backreferences=rule.escape_backreferences,
            no_escape=rule.no_escape,
            request_headers=dict(rule.request_headers),
            response_headers=dict(rule.response_headers),
        ))
    return plans


def outbound_plans(rules: Sequence[OutboundRule]) -> list[OutboundPlan]:
    return [OutboundPlan(
        name=rule.name or f"outbound {index + 1}",
        dialect=rule.dialect,
        header=rule.header,
        pattern=rule.pattern,
        syntax=rule.syntax,
        negate=rule.negate,
        ignore_case=rule.dialect == "iis" if rule.ignore_case is None else rule.ignore_case,
        conditions=[ConditionPlan(
            input=c.input, pattern=c.pattern, match_type=c.match_type, negate=c.negate,
            ignore_case=(rule.dialect == "iis") if c.ignore_case is None else c.ignore_case,
        ) for c in rule.conditions],
        match_any=rule.match_any,
        action=rule.action,
        value=rule.value,
        stop=rule.stop,
    ) for index, rule in enumerate(rules)]


def _proxy_host(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError.at(("rewrite", "proxy_hosts"),
                             f"invalid origin {text!r}: use HOST:PORT, e.g. \"10.0.0.5:8000\"")
    return f"{host.lower()}:{int(port)}"


def _check_target(url: str, allowed: Sequence[str], where: Where) -> None:
    lowered = url.lower()
    if not lowered.startswith(("http://", "https://")):
        return  # a local path: routed again, never a network target of its own
    authority = url.split("://", 1)[1].split("/", 1)[0]
    if any(c in authority for c in "{}$%"):
        raise ConfigError.at(where, (
            f"the host of {url!r} is a template: a rule may only proxy to an origin "
            "written out in full (e.g. http://127.0.0.1:8000/{R:1})"))
    try:
        parts = urlsplit(url)
        key = origin_key(parts.scheme.lower(), parts.hostname or "", parts.port)
    except ValueError as exc:
        raise ConfigError.at(where, f"invalid URL {url!r}: {exc}") from None
    if key not in allowed:
        known = ", ".join(allowed) or "none"
        raise ConfigError.at(where, (
            f"{url!r} proxies to {key}, which no route or app serves; add it to "
            f"[rewrite] proxy_hosts to allow it (known: {known})"))


def _map(spec: RewriteMap, base_dir: Path, where: Where) -> MapPlan:
    entries = dict(spec.entries)
    if spec.file is not None:
        path = base_dir / spec.file
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError.at((*where, "file"), f"{path}: {exc.strerror}") from None
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) < 2:
                raise ConfigError.at((*where, "file"),
                                     f"{path}:{number}: a line needs a key and a value")
            entries.setdefault(words[0], words[1])
    if spec.ignore_case:
        entries = {key.lower(): value for key, value in entries.items()}
    return MapPlan(spec.name, entries, spec.function, spec.default, spec.ignore_case)


def rewrite_problems(config: Config, base_dir: Path, file: str) -> list[ConfigError]:
    """``portico check``: the rules compiled as ``portico run`` compiles them (targets,
    map files, patterns, templates); the first problem, named by its key."""
    from portico.config.compile import serving_plan

    try:
        serving_plan(config, base_dir, base_dir)
    except ConfigError as exc:
        if "rewrite" not in exc.key:
            return []  # another table's: the other checks name it
        return [ConfigError(file, exc.key, exc.message)]
    return []
