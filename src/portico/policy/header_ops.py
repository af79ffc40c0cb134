"""``request_headers`` / ``response_headers``: set, add and remove, with templates.

Templates are compiled at load: ``"{prefix}/x"`` becomes literal and field
parts, and an unknown ``{name}`` or a CR/LF/NUL is a config error, never a
surprise at request time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from portico.http.events import Headers
from portico.policy.context import RequestFacts

PLACEHOLDERS: Final = ("scheme", "host", "remote_addr", "prefix", "request_id")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_FIELD: Final = re.compile(r"\{([^{}]*)\}")


def check_name(name: str) -> str | None:
    """Why ``name`` is not a valid header name, or None."""
    return None if _TOKEN.match(name) else "is not a valid header name (letters, digits, -)"


class Template:
    __slots__ = ("_parts",)

    def __init__(self, text: str) -> None:
        if any(c in text for c in "\r\n\x00"):
            raise ValueError("header values may not contain CR, LF or NUL")
        parts: list[tuple[str | None, bytes]] = []  # (placeholder, or None and literal bytes)
        position = 0
        for match in _FIELD.finditer(text):
            if match.group(1) not in PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {{{match.group(1)}}}; valid: "
                    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
                )
            if match.start() > position:
                parts.append((None, text[position : match.start()].encode("latin-1")))
            parts.append((match.group(1), b""))
            position = match.end()
        if position < len(text):
            parts.append((None, text[position:].encode("latin-1")))
        self._parts = tuple(parts)

    def render(self, facts: RequestFacts) -> bytes:
        return b"".join(
            [literal if field is None else facts.get(field) for field, literal in self._parts]
        )


class HeaderOps:
    """remove, then set (replacing every copy), then add."""

    __slots__ = ("_add", "_remove", "_remove_exact", "_set", "empty")

    def __init__(
        self,
        set_: Mapping[str, str] | None = None,
        add: Mapping[str, str | Sequence[str]] | None = None,
        remove: Sequence[str] = (),
        own: Mapping[bytes, bytes] | None = None,
    ) -> None:
        """``own`` maps lower-case names the caller writes itself to the exact bytes it
        writes them with; those are removed by exact match, without a lower-case pass."""
        self._set = tuple((n.encode("ascii"), Template(v)) for n, v in (set_ or {}).items())
        adds: list[tuple[bytes, Template]] = []
        for name, values in (add or {}).items():
            for value in [values] if isinstance(values, str) else values:
                adds.append((name.encode("ascii"), Template(value)))
        self._add = tuple(adds)
        removed = frozenset(n.lower().encode("ascii") for n in remove) | frozenset(
            n.lower() for n, _ in self._set
        )
        own = own or {}
        self._remove = frozenset(name for name in removed if name not in own)
        self._remove_exact = frozenset(own[name] for name in removed if name in own)
        self.empty = not (self._set or self._add or removed)

    def apply(self, headers: Headers, facts: RequestFacts) -> Headers:
        if self.empty:
            return headers
        if self._remove:
            headers = [(n, v) for n, v in headers if n.lower() not in self._remove]
        if self._remove_exact:
            exact = self._remove_exact
            for i in range(len(headers) - 1, -1, -1):  # in place: usually one field goes
                if headers[i][0] in exact:
                    del headers[i]
        for name, template in self._set:
            headers.append((name, template.render(facts)))
        for name, template in self._add:
            headers.append((name, template.render(facts)))
        return headers
