"""docs/guide/rewrite.md: every TOML example loads, and `portico try --json` gives what the
guide says for it (in process: click's runner, no network)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from portico.cli import main

GUIDE = Path(__file__).parents[2] / "docs" / "guide" / "rewrite.md"
EXAMPLES = re.findall(r"```toml\n(.*?)```", GUIDE.read_text("utf-8"), re.S)
KEYS = {"action", "url", "upstream_url", "status", "location", "reason", "body",
        "request_headers", "response_headers", "rules"}

# (example index, URL, extra options, the fields expected in the JSON object)
TRIES: list[tuple[int, str, list[str], dict[str, Any]]] = [
    (0, "http://www.site.com/myApp/x?q=1", [], {
        "action": "proxy", "upstream_url": "http://127.0.0.1:8000/myApp/x?q=1",
        "rules": ["ReverseProxyInboundRule1"]}),
    (1, "http://example.com/myApp/x", [], {
        "action": "proxy", "upstream_url": "http://127.0.0.1:8000/myApp/x", "rules": ["to-app"]}),
    (1, "http://www.example.com/myApp/x", [], {"action": "proxy", "rules": []}),
    (2, "http://example.com/article/7?p=abc", [], {
        "action": "redirect", "status": 301, "location": "https://example.com/a/7/abc"}),
    (3, "/old", [], {"action": "redirect", "status": 301, "location": "/new"}),
    (3, "/Docs/ReadMe", [], {"action": "proxy", "url": "/docs/readme"}),
    (3, "/Help/Topic", [], {"action": "proxy", "url": "/help/topic"}),
    (4, "/old/page", [], {"action": "respond", "status": 410, "reason": "Gone",
                          "body": "This page is gone."}),
    (4, "/x", ["-H", "User-Agent: badbot/1"], {"action": "abort", "rules": ["bots"]}),
    (4, "/x", [], {"action": "proxy", "response_headers": {"X-Served-By": "portico"}}),
    (5, "/nothing", [], {"action": "not_found", "status": 404}),
]


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_compiles(index: int, tmp_path: Path) -> None:
    from portico.config.compile import serving_plan
    from portico.config.load import parse

    plan = serving_plan(parse(EXAMPLES[index], "guide"), tmp_path, tmp_path)
    from portico.config.plan import ServingPlan

    assert ServingPlan.from_json(plan.to_json()) == plan  # as a worker receives it


@pytest.mark.parametrize(("index", "url", "options", "expected"), TRIES,
                         ids=[f"{t[0]}:{t[1]}" for t in TRIES])
def test_portico_try_json(index: int, url: str, options: list[str], expected: dict[str, Any],
                          tmp_path: Path) -> None:
    config = tmp_path / "portico.toml"
    config.write_text(EXAMPLES[index])
    result = CliRunner().invoke(main, ["try", "-c", str(config), "--json", *options, url])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert set(answer) == KEYS
    assert {key: answer[key] for key in expected} == expected


def test_try_shows_the_upstream_request_headers(tmp_path: Path) -> None:
    config = tmp_path / "portico.toml"
    config.write_text(EXAMPLES[0])
    result = CliRunner().invoke(main, ["try", "-c", str(config), "--json", "--client", "10.1.2.3",
                                       "-X", "POST", "http://www.site.com/myApp/"])
    headers = json.loads(result.output)["request_headers"]
    assert headers["X-Original-Host"] == "www.site.com"
    assert headers["X-Forwarded-For"] == "10.1.2.3"
    assert headers["Host"] == "127.0.0.1:8000"


def test_try_without_json_prints_the_rules_and_captures(tmp_path: Path) -> None:
    config = tmp_path / "portico.toml"
    config.write_text(EXAMPLES[0])
    result = CliRunner().invoke(main, ["try", "-c", str(config), "http://www.site.com/myApp/x"])
    assert result.exit_code == 0
    assert "ReverseProxyInboundRule1" in result.output and "'/x'" in result.output
    assert "upstream_url: http://127.0.0.1:8000/myApp/x" in result.output
