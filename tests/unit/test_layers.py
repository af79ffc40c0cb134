"""The import directions docs/architecture.md states: the request path's layers import
only downwards, and none of them imports the config, the server or the supervisor at
run time (``TYPE_CHECKING`` imports are for annotations and left out)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "portico"

ABOVE_THE_REQUEST_PATH = {"config", "server", "supervisor", "cli", "admin", "service"}
FORBIDDEN: dict[str, set[str]] = {
    "http": {"routing", "policy", "upstream", "proxy"} | ABOVE_THE_REQUEST_PATH,
    "upstream": {"routing", "policy", "proxy"} | ABOVE_THE_REQUEST_PATH,
    "routing": {"policy", "proxy"} | ABOVE_THE_REQUEST_PATH,
    "policy": {"routing", "upstream", "proxy"} | ABOVE_THE_REQUEST_PATH,
    "proxy": ABOVE_THE_REQUEST_PATH,
    "settings": {"http", "routing", "policy", "upstream", "proxy"} | ABOVE_THE_REQUEST_PATH,
}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(child) for child in ast.walk(node))
    return inside


def runtime_imports() -> dict[str, set[tuple[str, str]]]:
    """Per top-level package (or module) of portico: (package imported, importing file)."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        package = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text("utf-8"))
        skip = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                pieces = name.split(".")
                if pieces[0] == "portico" and len(pieces) > 1 and pieces[1] != package:
                    found[package].add((pieces[1], str(path.relative_to(SRC))))
    return found


def test_the_request_path_imports_only_downwards() -> None:
    imports = runtime_imports()
    assert {"http", "upstream", "routing", "proxy"} <= imports.keys()  # the walk saw them
    wrong = sorted(
        f"{where} imports portico.{target}"
        for package, banned in FORBIDDEN.items()
        for target, where in imports[package]
        if target in banned
    )
    assert not wrong, wrong


def test_routes_know_backends_and_not_the_other_way_round() -> None:
    imports = runtime_imports()
    assert "upstream" in {target for target, _ in imports["routing"]}
    assert "routing" not in {target for target, _ in imports["upstream"]}
