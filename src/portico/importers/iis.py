"""IIS URL Rewrite: web.config, applicationHost.config ``<globalRules>`` or a bare ``<rewrite>``.

The XML is parsed by lxml with entities, DTDs and the network off; a DOCTYPE is
refused outright (no entity can expand). Every element and attribute is either
translated, noted as having nothing to do in portico, or a ``Problem`` with its line.
Global rules come first, then the site's rules, as IIS runs them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from portico.importers.model import (
    Action,
    Condition,
    Imported,
    Origin,
    OutboundRule,
    RewriteMap,
    Rule,
    UnreadableConfig,
)

REDIRECT_TYPES = {"permanent": 301, "found": 302, "seeother": 303, "temporary": 307}
SYNTAXES = {"ecmascript": "regex", "wildcard": "wildcard", "exactmatch": "exact"}
MATCH_TYPES = {"pattern": "pattern", "isfile": "is_file", "isdirectory": "is_directory"}
_NOTHING_TO_DO = {
    "proxy": "ARR's proxy switch: portico proxies any rewrite to an absolute URL",
    "allowedServerVariables": "portico lets rules set any HTTP_* request header",
}


def read_iis(path: Path) -> Imported:
    """Read a web.config (or applicationHost.config, or a ``<rewrite>`` fragment)."""
    return parse_iis(path.read_bytes(), str(path))


def parse_iis(data: bytes, name: str) -> Imported:
    doctype = re.search(rb"<!DOCTYPE", data, re.IGNORECASE)
    if doctype:
        raise UnreadableConfig(Origin(name, data.count(b"\n", 0, doctype.start()) + 1,
                                      "<!DOCTYPE>"),
                               "a DOCTYPE is not allowed in a web.config (entities are refused)")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or 1
        raise UnreadableConfig(Origin(name, line, "XML"), f"malformed XML: {exc.msg}") from None
    reader = _Reader(Imported(source=name, dialect="iis"), name)
    reader.document(root)
    reader.result.rules[:0] = reader.global_rules
    return reader.result


def _line(element: etree._Element) -> int:
    line = getattr(element, "sourceline", None)  # lxml-stubs types it oddly
    return line if isinstance(line, int) else 1


def _tag(element: etree._Element) -> str:
    tag = element.tag
    return tag.split("}")[-1] if isinstance(tag, str) else ""


class _Reader:
    def __init__(self, result: Imported, name: str) -> None:
        self.result = result
        self.name = name
        self.global_rules: list[Rule] = []

    # -- helpers -------------------------------------------------------------------
    def origin(self, element: etree._Element, what: str | None = None) -> Origin:
        label = what or f"<{_tag(element)}>"
        rule_name = element.get("name")
        if what is None and rule_name:
            label = f'<{_tag(element)} name="{rule_name}">'
        return Origin(self.name, _line(element), label)

    def refuse(self, element: etree._Element, reason: str) -> None:
        text = etree.tostring(element, encoding="unicode", with_tail=False).strip()
        self.result.refuse(self.origin(element), reason, text)

    def attributes(self, element: etree._Element, known: set[str]) -> None:
        """Refuse an element with an attribute portico does not know."""
        unknown = sorted(set(element.attrib) - known)
        if unknown:
            raise _Refused(f"<{_tag(element)}> attribute {unknown[0]!r} has no portico "
                           "equivalent")

    def flag(self, element: etree._Element, attribute: str, default: bool) -> bool:
        value = element.get(attribute)
        if value is None:
            return default
        if value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _Refused(f'{attribute}="{value}": use "true" or "false"')

    def children(self, element: etree._Element,
                 handlers: dict[str, Callable[[etree._Element], None]]) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            tag = _tag(child)
            if tag in handlers:
                try:
                    handlers[tag](child)
                except _Refused as exc:
                    self.refuse(child, str(exc))
            elif tag in _NOTHING_TO_DO:
                self.result.note(self.origin(child), _NOTHING_TO_DO[tag])
            elif tag == "clear":
                self.result.note(self.origin(child), "nothing is inherited by a portico config")
            else:
                self.refuse(child, f"<{tag}> has no portico equivalent"
                            f" (inside <{_tag(element)}>)")

    # -- the document ----------------------------------------------------------------
    def document(self, root: etree._Element) -> None:
        tag = _tag(root)
        if tag == "configuration":
            self.children(root, {"system.webServer": self.web_server})
        elif tag == "system.webServer":
            self.web_server(root)
        elif tag == "rewrite":
            self.rewrite(root)
        elif tag in ("rules", "globalRules"):
            self.rules(root)
        else:
            raise UnreadableConfig(
                self.origin(root),
                "expected <configuration> (a web.config or applicationHost.config), "
                "<system.webServer>, <rewrite>, <rules> or <globalRules>")

    def web_server(self, element: etree._Element) -> None:
        self.children(element, {"rewrite": self.rewrite})

    def rewrite(self, element: etree._Element) -> None:
        self.children(element, {
            "rules": self.rules,
            "globalRules": self.rules,
            "rewriteMaps": lambda maps: self.children(maps, {"rewriteMap": self.rewrite_map}),
            "outboundRules": self.outbound_rules,
        })

    def rules(self, element: etree._Element) -> None:
        if element.attrib:  # the rules are read all the same
            self.result.refuse(self.origin(element), f"<{_tag(element)}> attribute "
                               f"{sorted(element.attrib)[0]!r} has no portico equivalent")
        target = self.global_rules if _tag(element) == "globalRules" else self.result.rules
        self.children(element, {"rule": lambda rule: self.rule(rule, target)})

    def rule(self, element: etree._Element, target: list[Rule]) -> None:
        self.attributes(element, {"name", "stopProcessing", "patternSyntax", "enabled"})
        if not self.flag(element, "enabled", True):
            self.result.note(self.origin(element), "disabled (enabled=\"false\"): left out")
            return
        syntax = SYNTAXES.get(element.get("patternSyntax", "ECMAScript").lower())
        if syntax is None:
            raise _Refused(f'patternSyntax="{element.get("patternSyntax")}": use ECMAScript, '
                           "Wildcard or ExactMatch")
        parts = {_tag(child): child for child in element if isinstance(child.tag, str)}
        extra = sorted(set(parts) - {"match", "conditions", "serverVariables", "action"})
        if extra:
            raise _Refused(f"<{extra[0]}> has no portico equivalent (inside <rule>)")
        match, action = parts.get("match"), parts.get("action")
        if match is None or action is None:
            raise _Refused("a rule needs a <match> and an <action>")
        self.attributes(match, {"url", "ignoreCase", "negate"})
        if match.get("url") is None:
            raise _Refused("<match> needs url=\"PATTERN\" (serverVariable is for outbound rules)")
        rule = Rule(
            name=element.get("name") or f"rule-{_line(element)}",
            dialect="iis",
            pattern=match.get("url", ""),
            origin=self.origin(element),
            action=self.action(action),
            syntax=syntax,
            negate=self.flag(match, "negate", False),
            ignore_case=self.flag(match, "ignoreCase", True),
            stop=self.flag(element, "stopProcessing", False),
        )
        if "conditions" in parts:
            self.conditions(parts["conditions"], rule)
        if "serverVariables" in parts:
            self.server_variables(parts["serverVariables"], rule)
        target.append(rule)

    def conditions(self, element: etree._Element, rule: Rule) -> None:
        self.attributes(element, {"logicalGrouping", "trackAllCaptures"})
        grouping = element.get("logicalGrouping", "MatchAll").lower()
        if grouping not in ("matchall", "matchany"):
            raise _Refused(f'logicalGrouping="{element.get("logicalGrouping")}": '
                           "use MatchAll or MatchAny")
        rule.match_any = grouping == "matchany"
        rule.track_all_captures = self.flag(element, "trackAllCaptures", False)
        for add in element:
            if not isinstance(add.tag, str):
                continue
            if _tag(add) != "add":
                raise _Refused(f"<{_tag(add)}> inside <conditions>: only <add> is known")
            self.attributes(add, {"input", "pattern", "negate", "ignoreCase", "matchType"})
            match_type = MATCH_TYPES.get(add.get("matchType", "Pattern").lower())
            if match_type is None:
                raise _Refused(f'matchType="{add.get("matchType")}": use Pattern, IsFile or '
                               "IsDirectory")
            if add.get("input") is None:
                raise _Refused("a condition needs input=\"{SERVER_VARIABLE}\"")
            rule.conditions.append(Condition(
                input=add.get("input", ""), pattern=add.get("pattern", ""),
                negate=self.flag(add, "negate", False),
                ignore_case=self.flag(add, "ignoreCase", True),
                match_type=match_type))

    def server_variables(self, element: etree._Element, rule: Rule) -> None:
        for item in element:
            if not isinstance(item.tag, str):
                continue
            name = item.get("name", "")
            self.attributes(item, {"name", "value", "replace"})
            if _tag(item) != "set" or not name:
                raise _Refused("inside <serverVariables> only <set name value> is known")
            if not self.flag(item, "replace", True):
                raise _Refused(f'{name} replace="false": portico always replaces the header')
            if not name.upper().startswith("HTTP_") or len(name) <= 5:
                raise _Refused(f"server variable {name}: only HTTP_* (request headers) can be "
                               "set; response headers are outbound rules")
            rule.request_headers[name] = item.get("value", "")  # the engine maps HTTP_X_Y

    def action(self, element: etree._Element) -> Action:
        self.attributes(element, {"type", "url", "appendQueryString", "redirectType",
                                  "statusCode", "subStatusCode", "statusReason",
                                  "statusDescription", "logRewrittenUrl"})
        kind = element.get("type", "None").lower()
        append = self.flag(element, "appendQueryString", True)
        if kind == "rewrite":
            return Action("rewrite", url=element.get("url", ""), append_query=append)
        if kind == "redirect":
            redirect = element.get("redirectType", "Permanent")
            status = REDIRECT_TYPES.get(redirect.lower())
            if status is None:
                raise _Refused(f'redirectType="{redirect}": use Permanent, Found, SeeOther or '
                               "Temporary")
            return Action("redirect", url=element.get("url", ""), status=status,
                          append_query=append)
        if kind == "customresponse":
            if element.get("subStatusCode", "0") not in ("", "0"):
                raise _Refused("subStatusCode is IIS-only (an HTTP status has no sub-status)")
            code = element.get("statusCode", "")
            if not code.isdigit() or not 200 <= int(code) <= 599:
                raise _Refused(f'statusCode="{code}": use an HTTP status from 200 to 599')
            return Action("respond", status=int(code), reason=element.get("statusReason", ""),
                          body=element.get("statusDescription", ""))
        if kind == "abortrequest":
            return Action("abort")
        if kind == "none":
            return Action("none")
        raise _Refused(f'action type="{element.get("type")}": use Rewrite, Redirect, '
                       "CustomResponse, AbortRequest or None")

    def rewrite_map(self, element: etree._Element) -> None:
        self.attributes(element, {"name", "defaultValue", "ignoreCase"})
        if not element.get("name"):
            raise _Refused("a rewriteMap needs a name")
        entries: dict[str, str] = {}
        for add in element:
            if not isinstance(add.tag, str):
                continue
            if _tag(add) != "add" or add.get("key") is None:
                raise _Refused("inside <rewriteMap> only <add key value> is known")
            entries[add.get("key", "")] = add.get("value", "")
        self.result.maps.append(RewriteMap(
            name=element.get("name", ""), origin=self.origin(element), entries=entries,
            default=element.get("defaultValue", ""),
            ignore_case=self.flag(element, "ignoreCase", True)))

    def outbound_rules(self, element: etree._Element) -> None:
        self.children(element, {"rule": self.outbound_rule})

    def outbound_rule(self, element: etree._Element) -> None:
        if element.get("preCondition"):
            raise _Refused("preConditions are not translated")
        self.attributes(element, {"name", "stopProcessing", "enabled", "patternSyntax"})
        if not self.flag(element, "enabled", True):
            self.result.note(self.origin(element), "disabled (enabled=\"false\"): left out")
            return
        if element.get("patternSyntax", "ECMAScript").lower() != "ecmascript":
            raise _Refused("outbound rules are translated with ECMAScript patterns only")
        match = element.find("match")
        action = element.find("action")
        if match is None or action is None:
            raise _Refused("an outbound rule needs a <match> and an <action>")
        variable = match.get("serverVariable", "")
        if match.get("filterByTags") or not variable:
            raise _Refused("outbound rules on response bodies (filterByTags) are not "
                           "translated; only <match serverVariable=\"RESPONSE_...\">")
        if not variable.upper().startswith("RESPONSE_"):
            raise _Refused(f"serverVariable={variable}: only RESPONSE_* headers")
        if action.get("type", "").lower() != "rewrite":
            raise _Refused("outbound rules are translated with type=\"Rewrite\" only")
        self.result.outbound.append(OutboundRule(
            name=element.get("name") or f"outbound-{_line(element)}",
            header=header_name(variable[9:]), pattern=match.get("pattern", ""),
            value=action.get("value", ""), origin=self.origin(element),
            negate=self.flag(match, "negate", False),
            ignore_case=self.flag(match, "ignoreCase", True),
            stop=self.flag(element, "stopProcessing", False)))


class _Refused(Exception):
    """An element that cannot be translated; ``children`` records it with its line."""


def header_name(variable: str) -> str:
    """``X_ORIGINAL_HOST`` → ``X-Original-Host`` (IIS sends it lower-case; same field)."""
    return "-".join(part.capitalize() for part in variable.split("_"))
