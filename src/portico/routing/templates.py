"""Rule templates of both dialects, parsed once at load and rendered per request.

IIS: ``{R:n}`` rule captures, ``{C:n}`` condition captures, ``{NAME}`` a server
variable, ``{ToLower:...}`` / ``{UrlEncode:...}`` / ``{UrlDecode:...}`` functions and
``{Map:key}`` rewrite maps; they nest. Apache: ``$n``, ``%n``, ``%{NAME}``,
``%{HTTP:Header}``, ``${map:key|default}``; a backslash escapes the next character.

A template is a tuple of parts; rendering reads a ``Scope`` (the captures, the
variables and the maps of one evaluation). Unknown names are errors at load, never
an empty string at request time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from portico.routing.variables import check_variable

# Part kinds.
LITERAL: Final = 0
RULE_CAPTURE: Final = 1
CONDITION_CAPTURE: Final = 2
VARIABLE: Final = 3
FUNCTION: Final = 4
MAP: Final = 5

Part = tuple[int, str, int, tuple["Part", ...], tuple["Part", ...] | None]
Template = tuple[Part, ...]

_FUNCTIONS: Final = {"tolower": "tolower", "urlencode": "urlencode", "urldecode": "urldecode"}
_HEX: Final = re.compile(r"%[0-9A-F]{2}")


def _lower_hex(text: str) -> str:
    return _HEX.sub(lambda m: m.group(0).lower(), text)


def url_encode(text: str) -> str:
    """IIS ``UrlEncode`` (as .NET's HttpUtility): space as ``+``, lower-case hex."""
    return _lower_hex(quote_plus(text, safe="-_.!*()"))


def escape_backreference(text: str) -> str:
    """Apache ``[B]``: non-alphanumerics %-escaped, lower-case hex, space as ``+``."""
    return _lower_hex(quote_plus(text, safe=""))


FUNCTIONS: Final[dict[str, Callable[[str], str]]] = {
    "tolower": str.lower,
    "toupper": str.upper,
    "urlencode": url_encode,
    "urldecode": unquote_plus,
    "escape": lambda text: quote(text, safe="/"),  # Apache int:escape
    "unescape": unquote,  # Apache int:unescape
}


class Lookup:
    """The maps a template may name, by lower-case name: (entries, function, default,
    ignore_case)."""

    def __init__(self, maps: Mapping[str, tuple[dict[str, str], str | None, str, bool]]) -> None:
        self.maps = {name.lower(): value for name, value in maps.items()}

    def get(self, name: str, key: str, default: str | None) -> str:
        entries, function, fallback, ignore_case = self.maps[name]
        if function is not None:
            return FUNCTIONS[function](key)
        value = entries.get(key.lower() if ignore_case else key)
        if value is None:
            return fallback if default is None else default
        return value


def parse(text: str, dialect: str, maps: Lookup) -> Template:
    """``text`` as a template of ``dialect``; ValueError names what is wrong."""
    parts, _end = (_parse_iis if dialect == "iis" else _parse_apache)(text, 0, maps, "")
    return parts


def _literal(parts: list[Part], text: str) -> None:
    if not text:
        return
    if parts and parts[-1][0] == LITERAL:
        parts[-1] = (LITERAL, parts[-1][1] + text, 0, (), None)
    else:
        parts.append((LITERAL, text, 0, (), None))


def _parse_iis(text: str, at: int, maps: Lookup, until: str) -> tuple[Template, int]:
    parts: list[Part] = []
    start = at
    while at < len(text):
        char = text[at]
        if until and char == until:
            break
        if char != "{":
            at += 1
            continue
        _literal(parts, text[start:at])
        close, colon = _brace_end(text, at)
        inner_start = at + 1
        name = text[inner_start:colon] if colon > 0 else text[inner_start:close]
        if colon < 0:
            parts.append((VARIABLE, check_variable(name, "iis"), 0, (), None))
        elif name in ("R", "C") and text[colon + 1:close].isdigit():
            index = int(text[colon + 1:close])
            if index > 9:
                raise ValueError(f"{{{name}:{index}}}: back-references go from 0 to 9")
            kind = RULE_CAPTURE if name == "R" else CONDITION_CAPTURE
            parts.append((kind, name, index, (), None))
        else:
            inner, _ = _parse_iis(text[colon + 1:close], 0, maps, "")
            lowered = name.lower()
            if lowered in _FUNCTIONS:
                parts.append((FUNCTION, _FUNCTIONS[lowered], 0, inner, None))
            elif lowered in maps.maps:
                parts.append((MAP, lowered, 0, inner, None))
            else:
                raise ValueError(
                    f"{{{name}:...}} is neither a function (ToLower, UrlEncode, UrlDecode) "
                    "nor a [[rewrite.map]]")
        at = start = close + 1
    _literal(parts, text[start:at])
    return tuple(parts), at


def _brace_end(text: str, at: int) -> tuple[int, int]:
    """The index of the ``}`` closing the ``{`` at ``at``, and of its first top-level ``:``."""
    depth = 0
    colon = -1
    for index in range(at, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index, colon
        elif char == ":" and depth == 1 and colon < 0:
            colon = index
    raise ValueError(f"unclosed '{{' in {text!r}")


def _parse_apache(text: str, at: int, maps: Lookup, until: str) -> tuple[Template, int]:
    parts: list[Part] = []
    buffer = ""
    while at < len(text):
        char = text[at]
        if until and char in until:
            break
        following = text[at + 1] if at + 1 < len(text) else ""
        if char == "\\" and following:
            buffer += following
            at += 2
        elif char in "$%" and following.isdigit():
            _literal(parts, buffer)
            buffer = ""
            kind = RULE_CAPTURE if char == "$" else CONDITION_CAPTURE
            parts.append((kind, char, int(following), (), None))
            at += 2
        elif char == "%" and following == "{":
            _literal(parts, buffer)
            buffer = ""
            close = text.find("}", at)
            if close < 0:
                raise ValueError(f"unclosed '%{{' in {text!r}")
            parts.append((VARIABLE, check_variable(text[at + 2:close], "apache"), 0, (), None))
            at = close + 1
        elif char == "$" and following == "{":
            _literal(parts, buffer)
            buffer = ""
            colon = text.find(":", at)
            if colon < 0:
                raise ValueError(f"a map lookup needs ${{name:key}}: {text!r}")
            name = text[at + 2:colon].lower()
            if name not in maps.maps:
                raise ValueError(f"${{{name}:...}}: no [[rewrite.map]] of that name")
            key, at = _parse_apache(text, colon + 1, maps, "|}")
            default: Template | None = None
            if at < len(text) and text[at] == "|":
                default, at = _parse_apache(text, at + 1, maps, "}")
            if at >= len(text):
                raise ValueError(f"unclosed '${{' in {text!r}")
            parts.append((MAP, name, 0, key, default))
            at += 1
        else:
            buffer += char
            at += 1
    _literal(parts, buffer)
    return tuple(parts), at


def uses_variables(template: Template) -> bool:
    return any(part[0] != LITERAL for part in template)


class Scope:
    """What one evaluation renders from: captures, variables and maps."""

    __slots__ = ("conditions", "escape", "maps", "rule", "variables")

    def __init__(self, variables: Callable[[str], str], maps: Lookup) -> None:
        self.variables = variables
        self.maps = maps
        self.rule: tuple[str, ...] = ()
        self.conditions: tuple[str, ...] = ()
        self.escape = False  # [B]: back-references are escaped

    def render(self, template: Template) -> str:
        out = []
        for kind, text, index, inner, default in template:
            if kind == LITERAL:
                out.append(text)
            elif kind in (RULE_CAPTURE, CONDITION_CAPTURE):
                groups = self.rule if kind == RULE_CAPTURE else self.conditions
                value = groups[index] if index < len(groups) else ""
                # [B]: captures are taken %-encoded as sent; Apache escapes the decoded
                # text, so decode first and the output is Apache's (foo%2fbar+baz).
                out.append(escape_backreference(unquote(value)) if self.escape else value)
            elif kind == VARIABLE:
                out.append(self.variables(text))
            elif kind == FUNCTION:
                out.append(FUNCTIONS[text](self.render(inner)))
            else:
                fallback = None if default is None else self.render(default)
                out.append(self.maps.get(text, self.render(inner), fallback))
        return "".join(out)
