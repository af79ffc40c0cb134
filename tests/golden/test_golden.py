"""Golden files: a config → the plan ``portico run`` serves from, compiled in-process.

Each case is a TOML file and the plan compile makes of it, as JSON, side by side:
``tests/golden/NAME.toml`` → ``tests/golden/NAME.plan.json``, plus the built-in
default and the examples (``builtin-default``, ``example-*``). A change to what
compile makes shows here as a diff of the plan, like caddy's ``caddyfile_adapt``
tests. What differs between machines is normalised: the config's directory is
``$BASE``, the state dir ``$STATE``, and an app without ``bind`` gets 127.0.0.1:
10001, 10002, ... in config order instead of a free port.

After a deliberate change, regenerate the files and read the diff before committing::

    PORTICO_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/golden
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from portico.config.compile import compile_plan
from portico.config.load import default_text, parse
from portico.config.plan import RunPlan

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
EXAMPLES = {f"example-{path.parent.name}": path
            for path in sorted((ROOT / "examples").glob("*/portico.toml"))}
CASES = ["builtin-default", *EXAMPLES, *(path.stem for path in sorted(HERE.glob("*.toml")))]
UPDATE = os.environ.get("PORTICO_GOLDEN_UPDATE") == "1"


def golden_plan(case: str) -> tuple[RunPlan, str]:
    """The case's plan, and its JSON as the golden file holds it."""
    if case == "builtin-default":
        text, name, config_file = default_text(), case, None
        base_dir = ROOT  # where `portico run` would be started: any directory
    else:
        config_file = EXAMPLES.get(case) or HERE / f"{case}.toml"
        text, name, base_dir = config_file.read_text("utf-8"), str(config_file), config_file.parent
    config = parse(text, name)
    state_dir = base_dir / ".portico-state"
    binds = {app.name: f"127.0.0.1:{10001 + index}"
             for index, app in enumerate(app for app in config.app if app.bind is None)}
    plan = compile_plan(config, base_dir, state_dir, config_file, binds)
    text = json.dumps(dataclasses.asdict(plan), default=str, indent=2) + "\n"
    text = text.replace(str(state_dir), "$STATE").replace(str(base_dir), "$BASE")
    return plan, text


@pytest.mark.parametrize("case", CASES)
def test_config_compiles_to_its_golden_plan(case: str) -> None:
    plan, text = golden_plan(case)
    golden = HERE / f"{case}.plan.json"
    if UPDATE:
        golden.write_text(text, "utf-8")
    assert golden.is_file(), f"no {golden.name}: PORTICO_GOLDEN_UPDATE=1 makes it"
    assert text == golden.read_text("utf-8"), (
        f"{case}: the plan differs from {golden.name}; if the change is meant, "
        "regenerate with PORTICO_GOLDEN_UPDATE=1 and review the diff")
    assert RunPlan.from_json(plan.to_json()) == plan  # what the serving process reads back


def test_every_golden_file_has_its_case() -> None:
    stale = {path.name for path in HERE.glob("*.plan.json")} - {f"{c}.plan.json" for c in CASES}
    assert not stale, f"golden files without a config: {sorted(stale)}"
