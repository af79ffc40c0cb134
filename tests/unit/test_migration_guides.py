"""docs/guide/migrate-from-{iis,apache}.md: each source block imports to the TOML after it.

A ```xml or ```apache block followed by a ```toml block is one case: the source is
written as web.config / site.conf, imported, and must give that TOML exactly (and load).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from portico.config.load import parse
from portico.importers.apache import read_apache
from portico.importers.emit import emit
from portico.importers.iis import read_iis

DOCS = Path(__file__).resolve().parents[2] / "docs" / "guide"
_BLOCK = re.compile(r"```(xml|apache|toml)\n(.*?)```", re.S)


def cases() -> list[tuple[str, int, str, str, str]]:
    found = []
    for guide in ("migrate-from-iis.md", "migrate-from-apache.md"):
        blocks = _BLOCK.findall((DOCS / guide).read_text("utf-8"))
        for index, ((kind, source), (next_kind, expected)) in enumerate(
                itertools.pairwise(blocks)):
            if kind != "toml" and next_kind == "toml":
                found.append((guide, index, kind, source, expected))
    return found


def test_each_guide_has_examples() -> None:
    assert {case[0] for case in cases()} == {"migrate-from-iis.md", "migrate-from-apache.md"}


@pytest.mark.parametrize(("guide", "index", "kind", "source", "expected"), cases(),
                         ids=[f"{c[0]}-{c[1]}" for c in cases()])
def test_the_guide_example_imports_as_shown(guide: str, index: int, kind: str, source: str,
                                            expected: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = "web.config" if kind == "xml" else "site.conf"
    Path(name).write_text(source, "utf-8")
    imported = read_iis(Path(name)) if kind == "xml" else read_apache(Path(name))
    text = emit(imported)
    assert text == expected
    parse(text, f"{guide} block {index}")
