"""Can the interpreter that will run an app import its server and its module?

Asked of that interpreter itself (``sys.executable``, as supervisor/commands.py
starts every server), in a child per app, with the app's ``cwd`` as its working
directory and on ``PYTHONPATH`` and the app's ``env``, as supervisor/process.py
starts it. The child looks modules up with ``importlib.util.find_spec``, which
reads no user code (but imports the parent packages of a dotted module, as the
server would). ``deep`` also imports each server's entry module, so a server
installed without one of its own dependencies is caught too (``portico check``;
``portico run`` keeps to the quick look-up before it spawns anything).

The child runs in a session of its own, so one that hangs is killed with
anything it started.

Each problem is one line naming the app, the package and the extra to install.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from portico.config.schema import App
from portico.errors import ConfigError
from portico.supervisor.commands import app_env, server_name

DISTRIBUTION = "portico-proxy"
PROBE_TIMEOUT = 30.0  # for all apps together; importing gevent or uvicorn takes ~0.5 s

# What each server needs importable (portico runs gunicorn with gevent workers), with
# the module ``python -m <server>`` runs, imported by a deep probe.
SERVER_NEEDS: dict[str, tuple[str, ...]] = {
    "gunicorn": ("gunicorn", "gevent"),
    "waitress": ("waitress",),
    "uvicorn": ("uvicorn",),
}
ENTRY_MODULE = {
    "gunicorn": "gunicorn.app.wsgiapp",
    "gevent": "gevent",
    "waitress": "waitress.runner",
    "uvicorn": "uvicorn.main",
}

# The child: [name, module to import after it is found, or ""] pairs in argv[1];
# prints one JSON line, {name: null | ["missing", module] | ["failed", message]}.
_PROBE = """\
import importlib, importlib.util, json, sys
verdicts = {}
for name, entry in json.loads(sys.argv[1]):
    try:
        if importlib.util.find_spec(name) is None:
            verdicts[name] = ["missing", name]
            continue
        if entry:
            importlib.import_module(entry)
        verdicts[name] = None
    except ModuleNotFoundError as exc:
        verdicts[name] = ["missing", exc.name or name]
    except BaseException as exc:
        verdicts[name] = ["failed", type(exc).__name__ + ": " + str(exc)]
sys.stdout.write("\\n" + json.dumps(verdicts) + "\\n")
"""
KILLED_WAIT = 5.0  # for the pipes to close once a hung child (and its group) is killed


@dataclass(frozen=True)
class AppToProbe:
    index: int  # in the config's [[app]] list, for the key path
    app: App
    cwd: Path  # resolved; it exists


def server_of(app: App) -> str:
    """The server that runs a ``wsgi``/``asgi`` app (as supervisor/commands.py chooses)."""
    return server_name(app.command, app.asgi, app.server)


def install_hint(package: str) -> str:
    extra = "gunicorn" if package == "gevent" else package
    return f"pip install '{DISTRIBUTION}[{extra}]' or '{DISTRIBUTION}[apps]'"


def import_problems(
    apps: list[AppToProbe], file: str, *, modules: bool, deep: bool
) -> list[ConfigError]:
    """One ConfigError per server package (and, with ``modules``, app module) the app's
    interpreter cannot import. The children run side by side."""
    started = []
    for probe in apps:
        if probe.app.command is not None:
            continue
        names = [(name, ENTRY_MODULE[name] if deep else "")
                 for name in SERVER_NEEDS[server_of(probe.app)]]
        if modules:
            names.append((_module_of(probe.app), ""))
        started.append((probe, _start(probe, names)))
    problems = []
    deadline = time.monotonic() + PROBE_TIMEOUT
    for probe, child in started:
        try:
            out, _ = child.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill(child)
            problems.append(ConfigError(file, _target_key(probe), (
                f"importing the server and module of app '{probe.app.name}' took over "
                f"{PROBE_TIMEOUT:g}s; does importing its package start something?")))
            continue
        verdicts = _verdicts(out)
        if verdicts is None:
            problems.append(ConfigError(file, _target_key(probe), (
                f"cannot ask {sys.executable} about app '{probe.app.name}' (exit status "
                f"{child.returncode})")))
            continue
        problems += _describe(probe, verdicts, file)
    return problems


def _module_of(app: App) -> str:
    target = app.wsgi or app.asgi
    assert target is not None
    return target.partition(":")[0]


def _target_key(probe: AppToProbe) -> str:
    return f"app[{probe.index}].{'asgi' if probe.app.asgi is not None else 'wsgi'}"


def _start(probe: AppToProbe, names: list[tuple[str, str]]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _PROBE, json.dumps(names)], cwd=probe.cwd,
        env=app_env(probe.app.env, probe.cwd), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        start_new_session=sys.platform != "win32",
    )


def _kill(child: subprocess.Popen[str]) -> None:
    """Kill a hung child and, on POSIX, its session's process group: whatever it started
    (holding its stdout) dies with it. Never waits more than KILLED_WAIT for the pipes."""
    if sys.platform != "win32":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
    child.kill()
    try:
        child.communicate(timeout=KILLED_WAIT)
    except subprocess.TimeoutExpired:  # a grandchild outside the group still holds stdout
        if child.stdout is not None:
            child.stdout.close()
        child.wait()


def _verdicts(out: str) -> dict[str, list[str] | None] | None:
    lines = out.strip().splitlines()
    try:
        verdicts = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return verdicts if isinstance(verdicts, dict) else None


def _describe(
    probe: AppToProbe, verdicts: dict[str, list[str] | None], file: str
) -> list[ConfigError]:
    name = probe.app.name
    server = server_of(probe.app)
    problems = []
    for package in SERVER_NEEDS[server]:
        verdict = verdicts.get(package)
        if verdict is None:
            continue
        kind, detail = verdict
        role = "" if package == server else f", which {server} runs with {package} workers"
        if kind == "missing" and detail == package:
            message = f"{package} is not installed for app '{name}'{role} ({install_hint(package)})"
        elif kind == "missing":
            message = (f"{package} is installed for app '{name}' but cannot be imported: it needs "
                       f"{detail}, which is not (pip install {detail}, or {install_hint(package)})")
        else:
            message = f"{package} cannot be imported for app '{name}': {detail}"
        problems.append(ConfigError(file, f"app[{probe.index}].server", message))
    module = _module_of(probe.app)
    verdict = verdicts.get(module)
    if verdict is not None:
        kind, detail = verdict
        target = probe.app.wsgi or probe.app.asgi
        if kind == "missing" and (module == detail or module.startswith(detail + ".")):
            message = (f"module '{module}' (of {target!r}) is not found for app '{name}' in "
                       f"{probe.cwd} (its cwd, also on PYTHONPATH): check the spelling, or set "
                       "cwd to the directory that holds it")
        elif kind == "missing":
            message = (f"module '{module}' (of {target!r}) cannot be imported for app '{name}': "
                       f"it needs {detail}, which is not installed (pip install {detail})")
        else:
            message = (f"module '{module}' (of {target!r}) cannot be imported for app "
                       f"'{name}': {detail}")
        problems.append(ConfigError(file, _target_key(probe), message))
    return problems
