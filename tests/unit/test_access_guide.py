"""docs/guide/access-control.md: every TOML example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portico.config.load import parse

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "access-control.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", GUIDE.read_text("utf-8"), re.S)


@pytest.mark.parametrize("block", BLOCKS)
def test_the_example_loads(block: str) -> None:
    parse(block, str(GUIDE))


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) == 2
