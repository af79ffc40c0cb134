"""The URL rewrite engine: ordered rules with IIS URL Rewrite and Apache mod_rewrite
semantics, compiled once at load (``RuleSet``), run per request (``RuleSet.run``).

Evaluation, as both dialects define it (rewrite-semantics.md §A1, §A2):

- Rules run in order; a matching rule's output is the next rule's input.
- A rule matches when its pattern matches its input (``negate``: does not) and
  then its conditions hold: all (MatchAll) or any (MatchAny / ``[OR]``), tested in
  order, each seeing the rule's captures and the previous condition's.
- The action sees the captures of the *last matched* condition, or, with
  ``track_all_captures``, every condition's groups numbered in turn.
- ``stop`` ([L], [END], stopProcessing) ends the list after a match; redirect,
  respond, abort and proxy always do. ``chain`` [C]: a failing rule skips the
  rules chained after it. ``skip`` [S=n]: a match skips n rules. ``restart`` [N]:
  a match runs the list again, at most ``max_rounds`` times (then 500).

Safety: patterns run on RE2 (routing/patterns.py); a rewritten URL with a raw
space or control character is refused (403) unless it is a redirect that
escapes it; captures are taken from the path as sent (never %-decoded), so a
rule cannot turn ``%2F`` or ``%20`` into a raw byte unless it says ``UrlDecode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from portico.routing.patterns import Pattern, required_literal
from portico.routing.templates import Lookup, Scope, Template, parse
from portico.routing.variables import RequestVariables

if TYPE_CHECKING:
    from portico.config.rules_plan import ConditionPlan, MapPlan, RulePlan

# What a run ends in (``RuleState.action``).
CONTINUE: Final = ""  # no rule ended it: route the (maybe rewritten) URL
PROXY: Final = "proxy"
REDIRECT: Final = "redirect"
RESPOND: Final = "respond"
ABORT: Final = "abort"
REFUSE: Final = "refuse"  # an error answer: status and reason (403 unsafe URL, 500 loop)

_UNSAFE: Final = frozenset(chr(c) for c in (*range(0x21), 0x7F))
# A rewritten URL longer than this is refused (414): captures repeated by a rule, and
# rounds of [N], cannot grow a URL without bound.
MAX_URL: Final = 65536


def lookup_of(maps: Sequence[MapPlan]) -> Lookup:
    return Lookup({m.name: (m.entries, m.function, m.default, m.ignore_case) for m in maps})


class Condition:
    __slots__ = ("input", "match_type", "negate", "pattern", "text")

    def __init__(self, plan: ConditionPlan, syntax: str, dialect: str, maps: Lookup) -> None:
        self.input: Template = parse(plan.input, dialect, maps)
        self.match_type = plan.match_type
        self.negate = plan.negate
        self.text = plan.pattern
        self.pattern = (Pattern(plan.pattern, syntax, plan.ignore_case)
                        if plan.match_type == "pattern" else None)

    def test(self, scope: Scope, root: Path | None) -> tuple[bool, tuple[str, ...]]:
        """(holds, its captures)."""
        value = scope.render(self.input)
        groups: tuple[str, ...] | None = ()
        if self.pattern is not None:
            groups = self.pattern.search(value)
            matched = groups is not None
        else:
            matched = _compare(self.match_type, value, self.text, root)
        if matched == self.negate:
            return False, ()
        return True, (groups or ()) if not self.negate else ()


def _compare(kind: str, value: str, other: str, root: Path | None) -> bool:
    if kind in ("is_file", "is_directory"):
        if root is None or not value:
            return False
        candidate = Path(value)
        try:
            candidate.resolve().relative_to(root.resolve())
        except ValueError:
            return False  # outside the document root: never tested
        return candidate.is_file() if kind == "is_file" else candidate.is_dir()
    if kind.startswith("-"):
        try:
            left, right = int(value), int(other)
        except ValueError:
            return False
        return {"-eq": left == right, "-ne": left != right, "-lt": left < right,
                "-le": left <= right, "-gt": left > right, "-ge": left >= right}[kind]
    return {"<": value < other, ">": value > other, "=": value == other,
            "<=": value <= other, ">=": value >= other}[kind]  # lexicographic, as Apache


class Rule:
    """One compiled ``RulePlan``."""

    __slots__ = (
        "body",
        "conditions",
        "host",
        "pattern",
        "plan",
        "request_headers",
        "response_headers",
        "url",
    )

    def __init__(self, plan: RulePlan, maps: Lookup) -> None:
        self.plan = plan
        self.host = plan.host
        self.pattern = Pattern(plan.pattern, plan.syntax, plan.ignore_case)
        self.conditions = [Condition(c, plan.syntax, plan.dialect, maps) for c in plan.conditions]
        self.url: Template | None = None
        if plan.url is not None and not (plan.dialect == "apache" and plan.url == "-"):
            self.url = parse(plan.url, plan.dialect, maps)
        self.body = plan.body
        self.request_headers = [(n, parse(v, plan.dialect, maps))
                                for n, v in plan.request_headers.items()]
        self.response_headers = [(n, parse(v, plan.dialect, maps))
                                 for n, v in plan.response_headers.items()]

    def applies_to(self, host: str) -> bool:
        wanted = self.host
        if wanted is None:
            return True
        if wanted.startswith("*."):
            return host.endswith(wanted[1:]) and len(host) > len(wanted) - 1
        return host == wanted

    def conditions_hold(self, scope: Scope, root: Path | None) -> bool:
        plan = self.plan
        tracked: list[str] = []
        held_any = False
        for condition in self.conditions:
            holds, groups = condition.test(scope, root)
            if holds:
                held_any = True
                if plan.track_all_captures:
                    tracked.extend(groups if not tracked else groups[1:])
                    scope.conditions = tuple(tracked)
                else:
                    scope.conditions = groups
                if plan.match_any:
                    return True
            elif not plan.match_any:
                return False
        return held_any or not self.conditions


class RuleState:
    """One request's run: the URL as rules leave it, and what they decided."""

    __slots__ = ("action", "body", "location", "matched", "path", "query", "reason",
                 "request_headers", "response_headers", "status", "trace", "upstream_url")

    def __init__(self, path: str, query: str, trace: bool = False) -> None:
        self.path = path  # canonical, %-encoded as sent
        self.query = query  # without '?'
        self.action = CONTINUE
        self.status = 0
        self.location = ""
        self.reason = ""
        self.body = ""
        self.upstream_url = ""  # PROXY: the absolute URL
        self.matched: list[str] = []
        self.request_headers: list[tuple[str, str]] = []
        self.response_headers: list[tuple[str, str]] = []
        # (rule name, rule captures, condition captures), for ``portico try``
        self.trace: list[tuple[str, tuple[str, ...], tuple[str, ...]]] | None = (
            [] if trace else None)

    @property
    def target(self) -> str:
        return self.path + ("?" + self.query if self.query else "")

    def refuse(self, status: int, reason: str) -> None:
        self.action = REFUSE
        self.status = status
        self.reason = reason
        self.body = ""


class RuleSet:
    """Compiled rules of one scope (the server's, or a route's)."""

    __slots__ = ("_contains", "_folded", "_gate_input", "_starts", "document_root",
                 "max_rounds", "prefix", "rules")

    def __init__(
        self,
        plans: Sequence[RulePlan],
        maps: Lookup,
        max_rounds: int = 10,
        prefix: str = "",
        document_root: Path | None = None,
    ) -> None:
        self.rules: list[Rule] = []
        for index, plan in enumerate(plans):
            try:
                self.rules.append(Rule(plan, maps))
            except ValueError as exc:
                raise RuleError(index, str(exc)) from None
        self.max_rounds = max_rounds
        self.prefix = prefix  # a route's prefix, for ``route_relative`` inputs
        self.document_root = document_root
        self._gate(plans)

    def _gate(self, plans: Sequence[RulePlan]) -> None:
        """What ``may_match`` checks: when every rule's pattern needs a literal (and
        none is negated), an input with none of them changes nothing."""
        self._gate_input = ""
        self._starts: tuple[bytes, ...] = ()
        self._contains: tuple[bytes, ...] = ()
        self._folded = False
        kinds = {plan.match_input for plan in plans}
        literals = [None if plan.negate else
                    required_literal(plan.pattern, plan.syntax, plan.ignore_case)
                    for plan in plans]
        if len(kinds) != 1 or not plans or any(lit is None for lit in literals):
            return
        found = [lit for lit in literals if lit is not None]
        self._folded = any(plan.ignore_case for plan in plans)
        fold = str.lower if self._folded else str
        if any(ord(c) > 0x7F for _, text in found for c in text):
            return  # the gate compares bytes as sent: ASCII literals only
        # Anchored literals as prefixes of the whole canonical path (no '//' in it).
        kind = kinds.pop()
        lead = {"path": "", "path_without_slash": "/", "route_relative": self.prefix + "/"}[kind]
        self._starts = tuple(fold(lead + text).encode("latin-1")
                             for anchored, text in found if anchored)
        self._contains = tuple(fold(text).encode("ascii")
                               for anchored, text in found if not anchored)
        self._gate_input = kind

    def may_match(self, path: bytes) -> bool:
        """False when no rule can match ``path`` (canonical, as sent), so running them
        would change nothing."""
        if not self._gate_input:
            return True
        if self._folded:
            path = path.lower()
        if path.startswith(self._starts):  # an empty tuple: False
            return True
        for text in self._contains:  # noqa: SIM110 - no generator per request
            if text in path:
                return True
        return False

    def run(self, state: RuleState, variables: RequestVariables, maps: Lookup) -> None:
        """Run the rules on ``state`` (changed in place)."""
        scope = Scope(variables.get, maps)
        rules = self.rules
        count = len(rules)
        rounds = 0
        index = 0
        hostname = variables.server_name().lower()
        while index < count:
            rule = rules[index]
            plan = rule.plan
            if not rule.applies_to(hostname) or not self._matches(rule, state, scope):
                index += 1
                if plan.chain:
                    while index < count and rules[index - 1].plan.chain:
                        index += 1
                continue
            state.matched.append(plan.name)
            if state.trace is not None:
                state.trace.append((plan.name, scope.rule, scope.conditions))
            self._act(rule, state, scope)
            if state.action != CONTINUE or plan.stop:
                return
            if plan.restart:
                rounds += 1
                if rounds >= self.max_rounds:
                    state.refuse(500, "rewrite rules restarted too often ([N] loop)")
                    return
                index = 0
                continue
            index += 1 + plan.skip

    def _matches(self, rule: Rule, state: RuleState, scope: Scope) -> bool:
        plan = rule.plan
        subject = self._input(plan.match_input, state.path)
        if subject is None:
            return False
        groups = rule.pattern.search(subject)
        if (groups is None) != plan.negate:
            return False
        scope.rule = groups if groups is not None else ()
        scope.conditions = ()
        scope.escape = False
        return rule.conditions_hold(scope, self.document_root)

    def _input(self, kind: str, path: str) -> str | None:
        if kind == "path":
            return path
        if kind == "path_without_slash":
            return path[1:]
        prefix = self.prefix
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return None
        return path[len(prefix):].lstrip("/")

    def _act(self, rule: Rule, state: RuleState, scope: Scope) -> None:
        plan = rule.plan
        scope.escape = plan.escape_backreferences
        action = plan.action
        for name, template in rule.request_headers:
            state.request_headers.append((name, scope.render(template)))
        for name, template in rule.response_headers:
            state.response_headers.append((name, scope.render(template)))
        if action == "none":
            return
        if action == "abort":
            state.action = ABORT
            return
        if action == "respond":
            state.action = RESPOND
            state.status = plan.status or 403
            state.reason = plan.reason or ""
            state.body = plan.body or ""
            return
        if rule.url is None:  # Apache "-": the URL stays
            return
        target = scope.render(rule.url)
        scope.escape = False
        if len(target) + len(state.query) > MAX_URL:
            state.refuse(414, "the rewritten URL is too long")
            return
        path, query = _with_query(target, state.query, plan.query)
        if action == "redirect":
            location = path + ("?" + query if query else "")
            if not plan.no_escape:
                location = quote(location, safe="/:?#[]@!$&'()*+,;=%~")
            if any(c in _UNSAFE for c in location):
                state.refuse(403, "the redirect target has a space or control character")
                return
            state.action = REDIRECT
            state.status = plan.status or 302
            state.location = location
            return
        if any(c in _UNSAFE for c in path) or any(c in _UNSAFE for c in query):
            state.refuse(403, "the rewritten URL has a space or control character")
            return
        if path.lower().startswith(("http://", "https://")):
            state.action = PROXY
            state.upstream_url = path + ("?" + query if query else "")
            return
        if not path.startswith("/"):
            base = self.prefix if plan.match_input == "route_relative" else ""
            path = base + "/" + path
        state.path = path
        state.query = query


def _with_query(target: str, original: str, mode: str) -> tuple[str, str]:
    """(path, query) of a rule's output under its query mode (config/rules.py ``query``)."""
    path, mark, own = target.partition("?")
    if mode == "append":
        query = own + ("&" if own and original else "") + original
    elif mode == "replace":
        query = own
    else:  # keep: the request's unless the target has a query (even an empty one: "x?")
        query = own if mark else original
    return path, query


class RuleError(ValueError):
    """A rule that cannot be compiled; ``index`` is its position in its list."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index

