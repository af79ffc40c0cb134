"""The rewrite rules as the serving process gets them: plain, every default resolved.

config/rules.py's ``rewrite_plan`` makes these from the schema: each dialect's
defaults filled in (``ignore_case``, ``query``, ``status``, ``match_input``), map
files read, names given. routing/rules.py compiles them into the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portico.settings import RouteLimits


@dataclass(frozen=True)
class ConditionPlan:
    input: str
    pattern: str
    match_type: str  # "pattern", "is_file", "is_directory", "<", "-eq", ...
    negate: bool
    ignore_case: bool


@dataclass(frozen=True)
class RulePlan:
    name: str
    dialect: str  # "iis" | "apache"
    host: str | None
    match_input: str  # "path" | "path_without_slash" | "route_relative"
    pattern: str
    syntax: str  # "regex" | "wildcard" | "exact"
    negate: bool
    ignore_case: bool
    conditions: list[ConditionPlan]
    match_any: bool
    track_all_captures: bool
    action: str  # "rewrite" | "proxy" | "redirect" | "respond" | "abort" | "none"
    url: str | None
    status: int | None  # redirect: resolved default; respond: as given
    reason: str | None
    body: str | None
    query: str  # "append" | "replace" | "keep"
    stop: bool
    chain: bool
    skip: int
    restart: bool
    escape_backreferences: bool
    no_escape: bool
    request_headers: dict[str, str]
    response_headers: dict[str, str]


@dataclass(frozen=True)
class OutboundPlan:
    name: str
    dialect: str
    header: str
    pattern: str
    syntax: str
    negate: bool
    ignore_case: bool
    conditions: list[ConditionPlan]
    match_any: bool
    action: str  # "rewrite" | "none"
    value: str
    stop: bool


@dataclass(frozen=True)
class MapPlan:
    name: str
    entries: dict[str, str]  # a file's lines are read into these at load
    function: str | None  # "tolower" | "toupper" | "escape" | "unescape"
    default: str
    ignore_case: bool


@dataclass(frozen=True)
class RouteRewritePlan:
    rules: list[RulePlan] = field(default_factory=list)
    outbound: list[OutboundPlan] = field(default_factory=list)


@dataclass(frozen=True)
class RewritePlan:
    rules: list[RulePlan] = field(default_factory=list)
    outbound: list[OutboundPlan] = field(default_factory=list)
    maps: list[MapPlan] = field(default_factory=list)
    # "host:port" origins a rule may proxy to: the routes' upstreams and apps, and
    # [rewrite] proxy_hosts. Checked at compile; kept for the engine's own check.
    proxy_hosts: list[str] = field(default_factory=list)
    max_rounds: int = 10
    document_root: str | None = None  # is_file / is_directory / REQUEST_FILENAME
    limits: RouteLimits = field(default_factory=RouteLimits)  # of proxy targets' routes
