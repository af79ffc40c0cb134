"""Config edits: keys set with tomlkit (comments and layout kept), diffs, and the history
of applied configs (S9, S11).

An edit names a key as messages do (``route[0].upstream``, ``server.listen``) and a
value; tomlkit changes that one value in the parsed document, so the file is never
assembled from strings. The history keeps the last N applied texts with who, when
and the diff: ``STATE/admin/KEY/history/NNNNNN.toml`` and ``.json``.
"""

from __future__ import annotations

import difflib
import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from portico.admin.auth import write_private

_PART = re.compile(r"([A-Za-z0-9_-]+)((?:\[\d+\])*)")


class EditError(ValueError):
    """An edit that cannot be made: the key does not fit the document."""


def parse_key(key: str) -> list[str | int]:
    """``route[0].upstream`` -> ``["route", 0, "upstream"]``."""
    parts: list[str | int] = []
    for piece in key.split("."):
        match = _PART.fullmatch(piece)
        if match is None:
            raise EditError(f"key {key!r}: write it as table.key or list[0].key")
        parts.append(match.group(1))
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return parts


def apply_edits(text: str, changes: list[dict[str, Any]]) -> str:
    """``text`` with each ``{"key", "value"}`` set and each ``{"key", "delete": true}``
    removed, comments and formatting elsewhere untouched."""
    document = tomlkit.parse(text)
    for change in changes:
        key = change.get("key")
        if not isinstance(key, str) or not key:
            raise EditError("each change needs a key")
        path = parse_key(key)
        parent: Any = document
        for i, part in enumerate(path[:-1]):
            parent = _step(parent, part, path[i + 1], key)
        last = path[-1]
        if change.get("delete"):
            try:
                del parent[last]
            except (KeyError, IndexError):
                raise EditError(f"key {key!r} is not in the file") from None
        elif "value" in change:
            _assign(parent, last, change["value"], key)
        else:
            raise EditError(f"change of {key!r}: give a value, or delete: true")
    return tomlkit.dumps(document)


def _step(parent: Any, part: str | int, following: str | int, key: str) -> Any:
    try:
        return parent[part]
    except (KeyError, IndexError):
        pass
    if isinstance(part, int):
        if isinstance(parent, AoT | list) and part == len(parent):
            parent.append(tomlkit.table())
            return parent[part]
        raise EditError(f"key {key!r}: no item [{part}] (there are {len(parent)})")
    parent[part] = tomlkit.aot() if isinstance(following, int) else tomlkit.table()
    return parent[part]


def _assign(parent: Any, last: str | int, value: Any, key: str) -> None:
    if isinstance(last, int):
        if not isinstance(parent, AoT | list) or last > len(parent):
            raise EditError(f"key {key!r}: no item [{last}]")
        if last == len(parent):
            parent.append(tomlkit.item(value))
            return
    elif not isinstance(parent, Table | dict) and not hasattr(parent, "__setitem__"):
        raise EditError(f"key {key!r}: its parent is not a table")
    parent[last] = tomlkit.item(value)


def diff(before: str, after: str, name: str = "portico.toml") -> str:
    return "".join(difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        fromfile=f"{name} (running)", tofile=f"{name} (new)"))


@dataclass(frozen=True)
class Version:
    version: int
    who: str
    when: float
    action: str  # "apply", "edit", "rollback to N", "automatic rollback", "before the first edit"
    etag: str
    diff: str


class History:
    """The last ``keep`` applied configs, oldest first."""

    def __init__(self, directory: Path, keep: int) -> None:
        self.directory = directory / "history"
        self.keep = keep

    def versions(self) -> list[Version]:
        rows = []
        for meta in sorted(self.directory.glob("*.json")):
            try:
                rows.append(Version(**json.loads(meta.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(rows, key=lambda v: v.version)

    def text(self, version: int) -> str | None:
        try:
            return (self.directory / f"{version:06d}.toml").read_text(encoding="utf-8")
        except OSError:
            return None

    def add(self, text: str, who: str, action: str, etag: str, change: str) -> Version:
        versions = self.versions()
        number = versions[-1].version + 1 if versions else 1
        entry = Version(number, who, round(time.time(), 3), action, etag, change)
        write_private(self.directory / f"{number:06d}.toml", text)
        write_private(self.directory / f"{number:06d}.json", json.dumps(asdict(entry)))
        for old in versions[: max(0, len(versions) + 1 - self.keep)]:
            for suffix in (".toml", ".json"):
                (self.directory / f"{old.version:06d}{suffix}").unlink(missing_ok=True)
        return entry
