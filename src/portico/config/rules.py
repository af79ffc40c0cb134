"""``[rewrite]`` and a route's ``rewrite``: URL rewrite rules, as a typed schema.

One rule model holds both dialects exactly (docs/guide/rewrite.md; the semantics are
in routing/rules.py). ``dialect`` picks what differs between IIS URL Rewrite and
Apache mod_rewrite and is not a key of its own: the template syntax (``{R:1}``,
``{HTTP_HOST}`` or ``$1``, ``%{HTTP_HOST}``), the defaults of ``ignore_case``,
``query``, the redirect ``status`` and ``match_input``, and the values of
variables that differ (IIS ``REQUEST_URI`` has the query, ``HTTPS`` is ``ON``).
Every key left out takes its dialect's default, so an importer writes only what
the source file said.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Dialect = Literal["iis", "apache"]
Syntax = Literal["regex", "wildcard", "exact"]
MatchInput = Literal["path", "path_without_slash", "route_relative"]
Action = Literal["rewrite", "proxy", "redirect", "respond", "abort", "none"]
QueryMode = Literal["append", "replace", "keep"]
MatchType = Literal[
    "pattern", "is_file", "is_directory",
    "<", ">", "=", "<=", ">=", "-eq", "-ne", "-lt", "-le", "-gt", "-ge",
]
MapFunction = Literal["tolower", "toupper", "escape", "unescape"]

REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_VARIABLE = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+\Z")
_MAP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def header_name(key: str) -> str:
    """A header key as a rule may give it: ``X-Original-Host``, or the IIS server
    variable ``HTTP_X_ORIGINAL_HOST`` / ``RESPONSE_X_FOO`` (prefix dropped, ``_`` → ``-``)."""
    if _VARIABLE.match(key):
        prefix = next((p for p in ("HTTP_", "RESPONSE_") if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(
                f"server variable {key!r} cannot be set: only HTTP_* (a request header) "
                "and RESPONSE_* (a response header), or a header name like X-Original-Host")
        key = key[len(prefix):].replace("_", "-").title()
    if not _TOKEN.match(key):
        raise ValueError(f"{key!r} is not a valid header name (letters, digits, -)")
    return key


def _headers(values: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in values.items():
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"{key}: header values may not contain CR, LF or NUL")
        out[header_name(key)] = value
    return out


def _check_regex(pattern: str, syntax: str) -> None:
    """A pattern the linear-time engine (RE2) compiles; the flags do not change that."""
    from portico.routing.patterns import Pattern

    Pattern(pattern, syntax, ignore_case=False)


class Condition(_Table):
    """One entry of a rule's ``conditions``: IIS ``<add input=... pattern=...>``, Apache
    ``RewriteCond TestString CondPattern [NC,OR]``."""

    input: str
    """Template tested: ``{HTTP_HOST}``, ``{R:1}``, ``{C:1}`` of the previous condition,
    functions and maps (IIS), or ``%{HTTP_HOST}``, ``$1``, ``%1``, ``${map:key}`` (Apache)."""
    pattern: str = ""
    """What the input must match, in the rule's ``syntax``; for a comparison
    ``match_type`` the value compared with."""
    match_type: MatchType = "pattern"
    """``pattern``; ``is_file`` / ``is_directory`` (the input names a file under a
    route's static root); Apache's lexicographic ``<`` ``>`` ``=`` ``<=`` ``>=`` and
    integer ``-eq`` ``-ne`` ``-lt`` ``-le`` ``-gt`` ``-ge``."""
    negate: bool = False
    """True when the condition holds if the input does *not* match (``!`` in Apache)."""
    ignore_case: bool | None = None
    """Case-insensitive match; left out: true in IIS, false in Apache (``[NC]``)."""


class RewriteRule(_Table):
    """``[[rewrite.rule]]`` or a route's ``[[route.rewrite.rule]]``: one inbound rule
    (IIS ``<rule>``; Apache ``RewriteCond``... + ``RewriteRule``). Rules run in order."""

    name: str = ""
    """Shown by ``portico try`` and the access log; default ``rule N`` (its position)."""
    dialect: Dialect = "iis"
    """Whose semantics: ``iis`` (URL Rewrite) or ``apache`` (mod_rewrite)."""
    host: str | None = None
    """Top-level rules only: apply to requests for this Host (exact or ``*.site.com``)."""
    match_input: MatchInput | None = None
    """What ``pattern`` sees: ``path_without_slash`` (IIS site level: ``myApp/x``),
    ``path`` (Apache server context: ``/myApp/x``), ``route_relative`` (the path after the
    route's prefix, without its leading slash: IIS nested ``web.config``, Apache
    ``<Location>``). Left out: the dialect's site-level form. Never includes the query."""
    pattern: str = ".*"
    """IIS ``<match url=...>``, Apache RewriteRule pattern."""
    syntax: Syntax = "regex"
    """``regex`` (ECMAScript / PCRE subset), ``wildcard`` (IIS: ``*`` captures, ``?`` one
    character) or ``exact``; the rule's conditions use it too."""
    negate: bool = False
    """The rule applies when the pattern does *not* match (no ``{R:n}``/``$n`` then)."""
    ignore_case: bool | None = None
    """Case-insensitive pattern; left out: true in IIS, false in Apache (``[NC]``)."""
    conditions: list[Condition] = []
    """Tested in order after the pattern matched (IIS ``<conditions>``, Apache ``RewriteCond``)."""
    match_any: bool = False
    """True: any condition suffices (IIS ``MatchAny``, Apache ``[OR]`` throughout)."""
    track_all_captures: bool = False
    """IIS ``trackAllCaptures``: ``{C:n}`` numbers the groups of all conditions in turn
    (``{C:0}`` the first condition's whole match) instead of the last matched one's."""
    action: Action = "rewrite"
    """``rewrite`` (to a local path, or to an absolute URL: proxy to that origin, as IIS
    with ARR), ``proxy`` (Apache ``[P]``: ``url`` must be absolute), ``redirect``,
    ``respond`` (IIS CustomResponse, Apache ``[F]`` / ``[G]``), ``abort`` (close the
    connection), ``none`` (only the headers and flow below)."""
    url: str | None = None
    """The target template for ``rewrite``/``proxy``/``redirect``; Apache ``-`` = unchanged."""
    status: int | None = None
    """``redirect``: 301, 302, 303, 307 or 308 (default 301 in IIS, 302 in Apache);
    ``respond``: the status (100-599)."""
    reason: str | None = None
    """``respond``: the reason phrase (IIS ``statusReason``)."""
    body: str | None = None
    """``respond``: the body, as text (IIS ``statusDescription``)."""
    query: QueryMode | None = None
    """The query after ``rewrite``/``redirect``: ``append`` the request's to the target's
    (IIS ``appendQueryString``, Apache ``[QSA]``), ``replace`` it with the target's own
    (IIS ``appendQueryString="false"``, Apache ``[QSD]``), or ``keep`` the request's
    unless the target has one (Apache's default; a target ending in ``?`` drops it).
    Left out: ``append`` in IIS, ``keep`` in Apache."""
    stop: bool = False
    """End rule processing after this rule when it matched (IIS ``stopProcessing``,
    Apache ``[L]``/``[END]``). Redirect, respond and abort always end it."""
    chain: bool = False
    """Apache ``[C]``: when this rule does not match, skip the rules chained after it."""
    skip: int = Field(0, ge=0, le=100)
    """Apache ``[S=n]``: when this rule matches, skip the next ``n`` rules."""
    restart: bool = False
    """Apache ``[N]``: when this rule matches, run the rule list again from the top on the
    new URL (at most ``[rewrite] max_rounds`` times, then 500)."""
    escape_backreferences: bool = False
    """Apache ``[B]``: back-references are %-escaped (space as ``+``, lower-case hex)."""
    no_escape: bool = False
    """Apache ``[NE]``: a redirect target is not %-escaped (raw spaces are then 403)."""
    request_headers: dict[str, str] = {}
    """Request header fields set when the rule matches; the key is a header name or an IIS
    server variable (``HTTP_X_ORIGINAL_HOST`` → ``X-Original-Host``); values are templates."""
    response_headers: dict[str, str] = {}
    """Response header fields set when the rule matches (``RESPONSE_X_FOO`` → ``X-Foo``)."""

    @field_validator("request_headers", "response_headers")
    @classmethod
    def _header_keys(cls, values: dict[str, str]) -> dict[str, str]:
        return _headers(values)

    @model_validator(mode="after")
    def _consistent(self) -> RewriteRule:
        _check_regex(self.pattern, self.syntax)
        for condition in self.conditions:
            if condition.match_type == "pattern":
                _check_regex(condition.pattern, self.syntax)
        if self.action in ("rewrite", "proxy", "redirect") and self.url is None:
            raise ValueError(f"action {self.action!r} needs a 'url'")
        if self.action == "proxy" and not re.match(r"https?://", self.url or ""):
            raise ValueError("action 'proxy' needs an absolute 'url' (http://host:port/...)")
        if self.action == "redirect" and self.status not in (None, *REDIRECT_STATUSES):
            raise ValueError(
                f"invalid redirect status {self.status}: use 301, 302, 303, 307 or 308")
        if self.action == "respond" and not (self.status and 100 <= self.status <= 599):
            raise ValueError("action 'respond' needs a 'status' from 100 to 599, e.g. 403")
        if self.action not in ("redirect", "respond") and self.status is not None:
            raise ValueError("'status' applies to the 'redirect' and 'respond' actions")
        if self.action != "respond" and (self.reason is not None or self.body is not None):
            raise ValueError("'reason' and 'body' apply to the 'respond' action")
        if self.negate and re.search(r"\{R:[1-9]\}|\$[1-9]", self.url or ""):
            raise ValueError("a negated pattern has no captures to refer to ({R:n} / $n)")
        return self


class OutboundRule(_Table):
    """``[[rewrite.outbound]]`` or a route's: rewrites a response header (IIS outbound
    rule on ``RESPONSE_LOCATION`` etc., Apache ``ProxyPassReverse``-like edits)."""

    name: str = ""
    """Shown by ``portico try``; default ``outbound N``."""
    dialect: Dialect = "iis"
    """Template syntax of ``value`` (``{R:1}`` or ``$1``)."""
    header: str = "Location"
    """The response header rewritten: a name or ``RESPONSE_LOCATION``-style variable."""
    pattern: str
    """Matched against the header's value; no header, no match."""
    syntax: Syntax = "regex"
    """``regex``, ``wildcard`` or ``exact``, as for inbound rules."""
    negate: bool = False
    """The rule applies when the pattern does *not* match."""
    ignore_case: bool | None = None
    """Left out: true in IIS, false in Apache."""
    conditions: list[Condition] = []
    """IIS preConditions, e.g. ``{RESPONSE_CONTENT_TYPE}`` ``^text/html``."""
    match_any: bool = False
    """True: any condition suffices (IIS ``MatchAny``)."""
    action: Literal["rewrite", "none"] = "rewrite"
    """``rewrite`` the header to ``value``, or ``none`` (only ``stop``)."""
    value: str = ""
    """The new value (template with ``{R:n}``); an empty result removes the header."""
    stop: bool = False
    """No further outbound rules after this one when it matched."""

    @field_validator("header")
    @classmethod
    def _header(cls, key: str) -> str:
        return header_name(key)

    @model_validator(mode="after")
    def _consistent(self) -> OutboundRule:
        _check_regex(self.pattern, self.syntax)
        return self


class RewriteMap(_Table):
    """``[[rewrite.map]]``: a lookup table used as ``{Name:key}`` (IIS) or
    ``${name:key|default}`` (Apache)."""

    name: str
    """What templates call it: ``{Name:key}`` / ``${name:key}``."""
    entries: dict[str, str] = {}
    """Inline ``key = value`` pairs (IIS ``<rewriteMap>``, Apache ``txt:`` inlined)."""
    file: str | None = None
    """A text file of ``key value`` lines (``#`` comments), relative to the config
    (Apache ``RewriteMap name txt:/path``); read at load and reload."""
    function: MapFunction | None = None
    """Apache ``int:`` maps: ``tolower``, ``toupper``, ``escape``, ``unescape``."""
    default: str = ""
    """Value for a key not in the map (IIS ``defaultValue``)."""
    ignore_case: bool = False
    """Keys looked up case-insensitively."""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _MAP_NAME.match(name):
            raise ValueError(f"invalid map name {name!r}: letters, digits, _ . -")
        return name

    @model_validator(mode="after")
    def _one_source(self) -> RewriteMap:
        if self.function is not None and (self.entries or self.file is not None):
            raise ValueError("a map with 'function' takes no 'entries' or 'file'")
        return self


class Rewrite(_Table):
    """``[rewrite]``: rules run on every request before routing, the maps they use, and
    outbound rules run on every response."""

    rule: list[RewriteRule] = []
    outbound: list[OutboundRule] = []
    map: list[RewriteMap] = []
    proxy_hosts: list[str] = []
    """``host:port`` origins a rule may proxy to (rewrite to an absolute URL) besides the
    routes' upstreams and apps; any other is refused when the config is loaded."""
    max_rounds: int = Field(10, ge=1, le=100)
    """How often ``restart`` (Apache ``[N]``) may run the rules again; beyond it, 500."""
    document_root: str | None = None
    """A directory (relative to the config) that ``is_file`` / ``is_directory`` conditions
    and ``REQUEST_FILENAME`` refer to; without one, they never hold."""

    @model_validator(mode="after")
    def _unique_maps(self) -> Rewrite:
        names = [m.name.lower() for m in self.map]
        if len(set(names)) != len(names):
            raise ValueError("two [[rewrite.map]] tables share a name")
        return self


class RouteRewrite(_Table):
    """A route's ``rewrite``: rules run after the route was chosen (they change what is
    forwarded, not the route), and outbound rules on its responses."""

    rule: list[RewriteRule] = []
    outbound: list[OutboundRule] = []

    @field_validator("rule")
    @classmethod
    def _no_host(cls, rules: list[RewriteRule]) -> list[RewriteRule]:
        if any(rule.host is not None for rule in rules):
            raise ValueError("'host' applies to [[rewrite.rule]]; a route has its own 'host'")
        return rules
