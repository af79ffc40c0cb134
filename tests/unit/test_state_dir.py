"""admin/runtime.py: one reading of PORTICO_STATE_DIR, for the state directory (cli/)
and the runtime directory under it."""

from __future__ import annotations

from pathlib import Path

import pytest

from portico.admin.runtime import runtime_dir, state_dir


def test_portico_state_dir_holds_the_state_and_the_runtime_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTICO_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("PORTICO_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "state"
    assert runtime_dir() == tmp_path / "state" / "run"
    monkeypatch.setenv("PORTICO_RUNTIME_DIR", str(tmp_path / "rt"))
    assert runtime_dir() == tmp_path / "rt"


@pytest.mark.parametrize("unset", [True, False])
def test_without_portico_state_dir_the_state_is_under_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unset: bool
) -> None:
    if unset:
        monkeypatch.delenv("PORTICO_STATE_DIR", raising=False)
    else:
        monkeypatch.setenv("PORTICO_STATE_DIR", "")  # empty is unset
    monkeypatch.delenv("PORTICO_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "portico"
    assert runtime_dir().name.startswith("portico")  # not under a state directory
    monkeypatch.delenv("XDG_STATE_HOME")
    assert state_dir() == Path.home() / ".local" / "state" / "portico"
