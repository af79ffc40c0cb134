"""What an importer reads out of a foreign config: routes, rules and the problems.

Plain dataclasses, no pydantic: the emitter (``emit.py``) turns them into TOML and
``portico check`` validates the result, so the checks live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Origin:
    """Where a directive or element was read: ``httpd.conf:12: ProxyPass``."""

    file: str
    line: int
    directive: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.directive}"


@dataclass(frozen=True)
class Problem:
    """Something the importer could not translate, and why."""

    origin: Origin
    reason: str
    text: str = ""
    """The original line or element, for the ``--allow-partial`` comment."""

    def __str__(self) -> str:
        return f"{self.origin}: {self.reason}"


@dataclass(frozen=True)
class Note:
    """Something read and deliberately left out, because portico does it anyway."""

    origin: Origin
    reason: str


@dataclass
class Condition:
    """One IIS ``<add input pattern>`` or Apache ``RewriteCond``."""

    input: str
    pattern: str
    negate: bool = False
    ignore_case: bool = True
    match_type: str = "pattern"
    """``pattern``, ``is_file``, ``is_directory``, or an Apache comparison (``<``, ``-eq``)."""
    or_next: bool = False
    """Apache ``[OR]``: this condition or the next one."""


@dataclass
class Action:
    """What a matched rule does."""

    type: Literal["rewrite", "redirect", "respond", "abort", "none"]
    url: str = ""
    status: int | None = None
    append_query: bool | None = None
    """IIS ``appendQueryString``; Apache's QSA (True) and QSD (False)."""
    reason: str = ""
    body: str = ""


@dataclass
class Rule:
    """One rewrite rule, in its dialect's own syntax (the engine reads both)."""

    name: str
    dialect: Literal["iis", "apache"]
    pattern: str
    origin: Origin
    action: Action
    syntax: str = "regex"
    negate: bool = False
    ignore_case: bool = False
    conditions: list[Condition] = field(default_factory=list)
    match_any: bool = False
    track_all_captures: bool = False
    stop: bool = False
    request_headers: dict[str, str] = field(default_factory=dict)
    """``HTTP_X_ORIGINAL_HOST`` server variables as header names, with their values."""
    flags: dict[str, str] = field(default_factory=dict)
    """Apache flags with no IIS equivalent (``C``, ``S``, ``N``, ``END``, ``B``, ``NE``)."""
    host: str | None = None
    """Rules of an Apache ``<VirtualHost>`` run only for its ServerName."""


@dataclass
class OutboundRule:
    """An IIS outbound rule on a response header (``RESPONSE_Location``)."""

    name: str
    header: str
    pattern: str
    value: str
    origin: Origin
    negate: bool = False
    ignore_case: bool = True
    stop: bool = False


@dataclass
class RewriteMap:
    name: str
    origin: Origin
    entries: dict[str, str] = field(default_factory=dict)
    default: str = ""
    file: str | None = None
    """A text map file (Apache ``txt:``), read by the engine."""
    function: str | None = None
    """An Apache ``int:`` map: tolower, toupper, escape, unescape."""
    ignore_case: bool = False
    """Keys looked up case-insensitively (IIS's default)."""


@dataclass
class Route:
    """A ``[[route]]``: ProxyPass, a ``<Location>`` block or a redirect."""

    path: str
    origin: Origin
    upstream: str | None = None
    host: str | None = None
    preserve_host: bool = False
    request_set: dict[str, str] = field(default_factory=dict)
    request_add: dict[str, list[str]] = field(default_factory=dict)
    request_remove: list[str] = field(default_factory=list)
    response_set: dict[str, str] = field(default_factory=dict)
    response_add: dict[str, list[str]] = field(default_factory=dict)
    response_remove: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)


@dataclass
class Certificate:
    hosts: list[str]
    cert: str
    key: str
    origin: Origin


@dataclass
class Imported:
    """Everything an importer read from one file (and its includes)."""

    source: str
    dialect: Literal["iis", "apache"]
    listen: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    """Rules that run before routing, in order (IIS rules, server-level RewriteRules)."""
    outbound: list[OutboundRule] = field(default_factory=list)
    maps: list[RewriteMap] = field(default_factory=list)
    certificates: list[Certificate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def refuse(self, origin: Origin, reason: str, text: str = "") -> None:
        self.problems.append(Problem(origin, reason, text))

    def note(self, origin: Origin, reason: str) -> None:
        self.notes.append(Note(origin, reason))


class UnreadableConfig(Exception):
    """The file cannot be read at all (malformed XML, unterminated section)."""

    def __init__(self, origin: Origin, reason: str) -> None:
        super().__init__(f"{origin}: {reason}")
        self.origin = origin
        self.reason = reason
