"""docs/reference/config.md is what config/reference.py makes of the schema today."""

from __future__ import annotations

from pathlib import Path

from portico.config.reference import COMMAND, render

REFERENCE = Path(__file__).parents[2] / "docs" / "reference" / "config.md"


def test_checked_in_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text("utf-8") == render(), (
        f"docs/reference/config.md is stale: regenerate it with `.venv/bin/{COMMAND}`")


def test_reference_documents_every_key() -> None:
    text = render()
    for heading in ("[server]", "[server.limits]", "[server.pool]", "[[route]]",
                    "[route.limits]", "[[app]]", "[tls]", "[[tls.certificate]]"):
        assert f"`{heading}`" in text
    undocumented = [line.split("|")[1].strip() for line in text.splitlines()
                    if line.startswith("| `") and line.rstrip().endswith("|  |")]
    assert not undocumented, f"keys without a docstring in config/schema.py: {undocumented}"
