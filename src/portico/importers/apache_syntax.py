"""httpd.conf read into directives and sections, with their file and line.

A line-based reader in the manner of httpd's own (server/config.c, util.c
``ap_getword_conf``): ``#`` starts a comment only at the start of a line, a
trailing ``\\`` continues a line, arguments are split on white space with
``"..."`` and ``'...'`` quoting and ``\\`` escaping inside quotes. No
Config::General-style parser is used: it would gather repeated directives into
lists and lose the order of RewriteCond and RewriteRule lines.
``Include``/``IncludeOptional`` are followed (globs, relative to ``ServerRoot`` or
the including file); a cycle or a missing ``Include`` is an error.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from portico.importers.model import Origin, UnreadableConfig

MAX_INCLUDE_DEPTH = 16


@dataclass
class Directive:
    name: str
    args: list[str]
    origin: Origin
    text: str
    children: list[Directive] = field(default_factory=list)
    """For a section (``<VirtualHost>``, ``<Location>``): what it holds."""
    section: bool = False

    @property
    def key(self) -> str:
        return self.name.lower()


def split_arguments(line: str, origin: Origin) -> list[str]:
    """``ProxyPass "/a b" http://x/`` → ``['ProxyPass', '/a b', 'http://x/']``."""
    words: list[str] = []
    index, length = 0, len(line)
    while index < length:
        while index < length and line[index] in " \t":
            index += 1
        if index >= length:
            break
        quote = line[index] if line[index] in "\"'" else ""
        if quote:
            index += 1
            word: list[str] = []
            while index < length and line[index] != quote:
                if line[index] == "\\" and index + 1 < length and line[index + 1] in (quote, "\\"):
                    index += 1
                word.append(line[index])
                index += 1
            if index >= length:
                raise UnreadableConfig(origin, f"unterminated {quote} quote")
            index += 1
            words.append("".join(word))
        else:
            start = index
            while index < length and line[index] not in " \t":
                index += 1
            words.append(line[start:index])
    return words


def logical_lines(text: str, name: str) -> list[tuple[int, str]]:
    """(first line number, joined line) for each non-blank, non-comment line."""
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        joined = "".join(pending).strip()
        pending = []
        if joined and not joined.startswith("#"):
            lines.append((start, joined))
    if pending:
        raise UnreadableConfig(Origin(name, start, "\\"), "the file ends inside a continued line")
    return lines


class _Reader:
    def __init__(self, root: Path) -> None:
        self.server_root = root
        self.reading: list[Path] = []

    def read(self, path: Path, display: str) -> list[Directive]:
        resolved = path.resolve()
        if resolved in self.reading:
            raise UnreadableConfig(Origin(display, 1, "Include"), "includes itself (a cycle)")
        if len(self.reading) >= MAX_INCLUDE_DEPTH:
            raise UnreadableConfig(Origin(display, 1, "Include"), "includes nested too deep")
        self.reading.append(resolved)
        try:
            text = path.read_text("utf-8", errors="replace")
            top: list[Directive] = []
            stack: list[Directive] = []
            for line, content in logical_lines(text, display):
                self.line(path, display, line, content, top, stack)
            if stack:
                raise UnreadableConfig(stack[-1].origin, f"<{stack[-1].name}> is never closed")
            return top
        finally:
            self.reading.pop()

    def line(self, path: Path, display: str, line: int, content: str,
             top: list[Directive], stack: list[Directive]) -> None:
        target = stack[-1].children if stack else top
        if content.startswith("</"):
            name = content[2:].rstrip(">").strip()
            if not content.endswith(">") or not stack or stack[-1].key != name.lower():
                opened = f"<{stack[-1].name}> (line {stack[-1].origin.line})" if stack else "none"
                raise UnreadableConfig(Origin(display, line, content),
                                       f"closes a section that is not open; open: {opened}")
            stack.pop()
            return
        if content.startswith("<"):
            if not content.endswith(">"):
                raise UnreadableConfig(Origin(display, line, content.split()[0]),
                                       "a section line must end with '>'")
            words = split_arguments(content[1:-1], Origin(display, line, content))
            if not words:
                raise UnreadableConfig(Origin(display, line, content), "an empty section")
            section = Directive(words[0], words[1:], Origin(display, line, f"<{words[0]}>"),
                                content, section=True)
            target.append(section)
            stack.append(section)
            return
        origin = Origin(display, line, content.split()[0])
        words = split_arguments(content, origin)
        directive = Directive(words[0], words[1:], origin, content)
        if directive.key == "serverroot" and directive.args:
            self.server_root = Path(directive.args[0])
        if directive.key in ("include", "includeoptional"):
            target.extend(self.include(path, directive))
            return
        target.append(directive)

    def include(self, path: Path, directive: Directive) -> list[Directive]:
        if len(directive.args) != 1:
            raise UnreadableConfig(directive.origin, "Include takes one file or glob")
        pattern = directive.args[0]
        candidates = [Path(pattern)] if os.path.isabs(pattern) else [
            self.server_root / pattern, path.parent / pattern]
        for candidate in candidates:
            matches = sorted(glob.glob(str(candidate)))
            if matches:
                included: list[Directive] = []
                for match in matches:
                    if Path(match).is_file():
                        included.extend(self.read(Path(match), match))
                return included
        if directive.key == "includeoptional":
            return []
        raise UnreadableConfig(directive.origin,
                               f"{pattern}: no such file (looked in "
                               + ", ".join(str(c.parent) for c in candidates) + ")")


def read_directives(path: Path) -> list[Directive]:
    """The file's directives as a tree, ``Include`` files read in place."""
    return _Reader(path.parent).read(path, str(path))
