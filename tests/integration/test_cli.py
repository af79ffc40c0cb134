"""``portico check`` / ``portico run``: clear errors naming file, key and what is valid; exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
# The README and the hand-written pages of docs/: each TOML block in them is a whole config
# a reader may copy (docs/reference/ is generated from the schema and tested with it).
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "docs" / "guide").glob("*.md"))]


def portico(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portico", *args], capture_output=True, text=True, timeout=30,
        cwd=cwd, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return portico("check", "-c", str(path))


def test_bad_config_is_one_clear_message_and_exit_2(tmp_path: Path) -> None:
    # One real `portico check` on a bad file; every kind of bad file is in
    # tests/unit/test_config_errors.py, in-process.
    result = check(tmp_path, "[server]\nlisten = ['http://127.0.0.1:8080']\nlisen = 1\n")
    assert result.returncode == 2
    message = result.stderr
    assert "Traceback" not in message
    assert str(tmp_path / "bad.toml") in message.replace("\n", "")
    assert "server.lisen" in message and "valid keys here: listen, trusted_proxies" in message


def test_run_refuses_bad_config_the_same_way(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server]\nnope = 1\n")
    result = portico("run", "-c", str(path))
    assert result.returncode == 2 and "server.nope" in result.stderr and "Traceback" not in result.stderr


def test_builtin_default_checks(tmp_path: Path) -> None:
    # --config-only: the demo's fixed ports (8080, 8000) may be taken on a test machine
    result = portico("check", "--config-only", cwd=tmp_path)
    assert result.returncode == 0 and "/myapp" in result.stdout and "app myapp" in result.stdout


def docs_configs() -> list[tuple[str, str]]:
    """(where, block) for every ```toml block in the README and docs/, where = file:index."""
    configs = []
    for doc in DOCS:
        blocks = doc.read_text().split("```toml\n")[1:]
        for index, block in enumerate(blocks):
            configs.append((f"{doc.relative_to(REPO)}:{index}", block.split("```", 1)[0]))
    return configs


def test_the_docs_show_configs() -> None:
    # the parametrised test below would pass with none found
    where = {name.split(":")[0] for name, _ in docs_configs()}
    assert {"README.md", "docs/guide/apps.md", "docs/guide/https.md"} <= where


@pytest.mark.parametrize(("where", "text"), docs_configs(), ids=[name for name, _ in docs_configs()])
def test_every_config_in_the_readme_and_docs_is_valid(tmp_path: Path, where: str, text: str) -> None:
    path = tmp_path / "readme.toml"
    path.write_text(text)
    # the file alone: its certificate files, cwd and ports are the reader's, not this machine's
    result = portico("check", "--config-only", "-c", str(path), cwd=tmp_path)
    assert result.returncode == 0, f"{where}: {result.stderr}"
