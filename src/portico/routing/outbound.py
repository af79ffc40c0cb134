"""Outbound rules: response header values rewritten on the way to the client.

IIS outbound rules on ``RESPONSE_LOCATION`` and the like: the rule's pattern is
matched against the header's value (no header, no match), its conditions may read
``{RESPONSE_<NAME>}``, and ``value`` (with ``{R:n}``) replaces the header; an empty
result removes it. Request variables are not known here and read as "".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from portico.routing.patterns import Pattern
from portico.routing.rules import Condition
from portico.routing.templates import Lookup, Scope, Template, parse

if TYPE_CHECKING:
    from portico.config.rules_plan import OutboundPlan


class OutboundRule:
    __slots__ = ("conditions", "lname", "name", "pattern", "plan", "value")

    def __init__(self, plan: OutboundPlan, maps: Lookup) -> None:
        self.plan = plan
        self.name = plan.header.encode("latin-1")
        self.lname = self.name.lower()
        self.pattern = Pattern(plan.pattern, plan.syntax, plan.ignore_case)
        self.conditions = [Condition(c, plan.syntax, plan.dialect, maps) for c in plan.conditions]
        self.value: Template = parse(plan.value, plan.dialect, maps)


class OutboundRules:
    __slots__ = ("maps", "rules")

    def __init__(self, plans: Sequence[OutboundPlan], maps: Lookup) -> None:
        self.rules = [OutboundRule(plan, maps) for plan in plans]
        self.maps = maps

    def apply(self, headers: list[tuple[bytes, bytes]], status: int) -> list[tuple[bytes, bytes]]:
        def variable(key: str) -> str:
            kind, _, name = key.partition(":")
            if kind != "response":
                return ""
            wanted = name.encode("latin-1")
            return ", ".join(v.decode("latin-1") for n, v in headers if n.lower() == wanted)

        for rule in self.rules:
            plan = rule.plan
            index = next((i for i, (n, _) in enumerate(headers) if n.lower() == rule.lname), -1)
            value = headers[index][1].decode("latin-1") if index >= 0 else None
            groups = rule.pattern.search(value) if value is not None else None
            if value is None or (groups is None) != plan.negate:
                continue
            scope = Scope(variable, self.maps)
            scope.rule = groups or ()
            if rule.conditions:
                held = [c.test(scope, None)[0] for c in rule.conditions]
                if not (any(held) if plan.match_any else all(held)):
                    continue
            if plan.action == "rewrite":
                new = scope.render(rule.value)
                if any(c in new for c in "\r\n\x00"):
                    continue  # never a header split
                if new:
                    headers[index] = (headers[index][0], new.encode("latin-1", "replace"))
                else:
                    del headers[index]
            if plan.stop:
                break
        return headers
