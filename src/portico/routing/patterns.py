"""Rule patterns on a linear-time engine (RE2), so no pattern can stall a worker.

``(a+)+$`` against ``aaaa…!`` backtracks for minutes in Python's ``re``; RE2 runs
it in time linear in the input. The price: no look-around and no back-references
inside a pattern, which load refuses with RE2's own message. IIS ``Wildcard``
(``*`` captures, ``?`` one character) and ``ExactMatch`` syntaxes are compiled to
the same interface.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Final

import re2

_OPTIONS: Final[Any] = re2.Options()
_OPTIONS.log_errors = False  # a bad pattern is a config error, not a line on stderr


class Pattern:
    """``search(text)``: the groups (0 = the whole match; a group that took no part is
    "") when the pattern matches, else None."""

    __slots__ = ("_compiled", "_exact", "_ignore_case", "groups")

    def __init__(self, pattern: str, syntax: str, ignore_case: bool) -> None:
        self._exact = pattern.lower() if ignore_case and syntax == "exact" else pattern
        self._ignore_case = ignore_case
        self._compiled: Any = None
        self.groups = 0
        if syntax == "exact":
            return
        source = wildcard_regex(pattern) if syntax == "wildcard" else pattern
        if ignore_case:
            source = "(?i)" + source
        try:
            self._compiled = re2.compile(source, _OPTIONS)
        except re2.error as exc:
            message = exc.args[0] if exc.args else exc
            if isinstance(message, bytes):
                message = message.decode("utf-8", "replace")
            raise ValueError(
                f"pattern {pattern!r} is not supported by the linear-time engine (RE2): "
                f"{message}") from None
        self.groups = self._compiled.groups

    def search(self, text: str) -> tuple[str, ...] | None:
        compiled = self._compiled
        if compiled is None:
            subject = text.lower() if self._ignore_case else text
            return (text,) if subject == self._exact else None
        match = compiled.search(text)
        if match is None:
            return None
        return (match.group(0), *(g or "" for g in match.groups()))


def wildcard_regex(pattern: str) -> str:
    """IIS Wildcard syntax as a regex: ``*`` a capture of anything, ``?`` one character,
    the rest literal, the whole input matched."""
    out = []
    for char in pattern:
        if char == "*":
            out.append("(.*)")
        elif char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "^" + "".join(out) + "$"


def required_literal(pattern: str, syntax: str, ignore_case: bool) -> tuple[bool, str] | None:
    """(anchored, text): a literal every input the pattern matches must start with
    (anchored) or contain; None when there is none to find (``.*``, ``^a|^b``).

    It lets a rule list skip its patterns for the many requests that no rule can
    match (a ``str.startswith`` of a tuple instead of one RE2 call per rule). Found
    with Python's own regex parser; a pattern it cannot read has none."""
    if syntax == "exact":
        return True, pattern.lower() if ignore_case else pattern
    source = wildcard_regex(pattern) if syntax == "wildcard" else pattern
    try:
        parser: Any = importlib.import_module("re._parser")  # Python's own (3.11+)
        parsed = parser.parse(source)
    except Exception:  # RE2-only syntax, or a parser that moved: no shortcut
        return None
    items = list(parsed)
    anchored = bool(items) and items[0] == (parser.AT, parser.AT_BEGINNING)
    if anchored:
        items = items[1:]
    text = _leading_literal(items, parser)
    if not text:
        return None
    folded = ignore_case or bool(parsed.state.flags & re.IGNORECASE)
    return anchored, text.lower() if folded else text


def _leading_literal(items: list[Any], parser: Any) -> str:
    text = ""
    for op, arg in items:
        if op == parser.LITERAL:
            text += chr(arg)
        elif op == parser.SUBPATTERN and arg[1] == 0 and arg[2] == 0:  # (...) without flags
            inner = list(arg[3])
            literal = _leading_literal(inner, parser)
            text += literal
            if len(literal) != len(inner):
                break
        else:
            break
    return text
