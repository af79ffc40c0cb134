"""config/importable.py: an app module's source is compiled and read, never run, and a
probe that hangs is killed with whatever it started. Each case runs the real probe (a
child of this interpreter) in a directory of its own."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from portico.config import importable
from portico.config.app_schema import App
from portico.config.importable import AppToProbe, import_problems


def problems_of(directory: Path, target: str) -> list[str]:
    app = App(name="a", wsgi=target, server="waitress")
    found = import_problems([AppToProbe(0, app, directory)], "portico.toml",
                            modules=True, deep=False)
    return [str(problem) for problem in found]


@pytest.mark.parametrize("source", [
    "app = object()\n",
    "app: object = object()\n",
    "def app(environ, start_response):\n    return []\n",
    "class app:\n    pass\n",
    "import os as app\n",
    "from os import path as app\n",
    "from os import sep as x, path as app\n",
    "try:\n    from os import path as app\nexcept ImportError:\n    app = None\n",
    "if True:\n    app, other = 1, 2\n",
    "for app in range(1):\n    pass\n",
    "with open(__file__) as app:\n    pass\n",
    "(app := 1)\n",
    "def make():\n    global app\n    app = 1\n",
])
def test_an_attribute_bound_at_the_top_level_passes(tmp_path: Path, source: str) -> None:
    (tmp_path / "mod.py").write_text(source)
    assert problems_of(tmp_path, "mod:app") == []


@pytest.mark.parametrize("source", [
    "from os.path import *\n",
    "def __getattr__(name):\n    return object()\n",
    "globals()['app'] = 1\n",
    "import sys\nsetattr(sys.modules[__name__], 'app', 1)\n",
    "exec('app = 1')\n",
    "import sys\nsys.modules[__name__].app = 1\n",
])
def test_an_attribute_that_may_be_bound_out_of_sight_is_not_questioned(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "mod.py").write_text(source)
    assert problems_of(tmp_path, "mod:app") == []


def test_a_name_bound_only_inside_a_function_or_class_is_not_top_level(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(
        "def make():\n    app = 1\n    return app\n\n\nclass Holder:\n    app = 1\n")
    assert problems_of(tmp_path, "mod:app") == [
        "portico.toml: app[0].wsgi: module mod has no top-level 'app' (it defines: make, Holder)"]


def test_a_factory_call_or_a_dotted_attribute_is_checked_by_its_first_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "mod.py").write_text("def create_app():\n    return None\n")
    assert problems_of(tmp_path, "mod:create_app()") == []
    assert problems_of(tmp_path, "mod:create_app.attr") == []
    assert problems_of(tmp_path, "mod:make_app()") == [
        "portico.toml: app[0].wsgi: module mod has no top-level 'make_app' "
        "(it defines: create_app)"]
    assert problems_of(tmp_path, "mod") == []  # gunicorn's default, not looked for


def test_a_package_submodule_named_by_the_attribute_passes(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "wsgi.py").write_text("app = 1\n")
    assert problems_of(tmp_path, "pkg:wsgi") == []


def test_errors_the_compiler_finds_beyond_the_parser_are_reported(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("app = 1\nreturn app\n")
    assert problems_of(tmp_path, "mod:app") == [
        "portico.toml: app[0].wsgi: mod.py line 2: SyntaxError: 'return' outside function"]


def test_the_module_is_compiled_and_never_run(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("open('ran', 'w').close()\napp = 1\n")
    assert problems_of(tmp_path, "mod:app") == []
    assert not (tmp_path / "ran").exists()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_hung_probe_is_killed_with_the_grandchild_that_holds_its_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing the parent package starts a process that inherits the probe's stdout,
    then hangs: the probe, and that process, are killed at the timeout."""
    (tmp_path / "hangs").mkdir()
    (tmp_path / "hangs" / "__init__.py").write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import os, time; "
        "open(\"grandchild.pid\", \"w\").write(str(os.getpid())); time.sleep(60)'])\n"
        "time.sleep(60)\n")
    (tmp_path / "hangs" / "app.py").write_text("app = 1\n")
    monkeypatch.setattr(importable, "PROBE_TIMEOUT", 2.0)
    started = time.monotonic()
    try:
        found = problems_of(tmp_path, "hangs.app:app")
        took = time.monotonic() - started
        assert len(found) == 1 and "took over 2s" in found[0], found
        assert took < 2.0 + importable.KILLED_WAIT, took
        pid = int((tmp_path / "grandchild.pid").read_text())
        deadline = time.monotonic() + 5
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _gone(pid)
    finally:
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
            os.kill(int((tmp_path / "grandchild.pid").read_text()), signal.SIGKILL)
