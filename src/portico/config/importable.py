"""Can the interpreter that will run an app import its server and its module?

Asked of that interpreter itself (``sys.executable``, as supervisor/commands.py
starts every server), in a child per app, with the app's ``cwd`` as its working
directory and on ``PYTHONPATH`` and the app's ``env``, as supervisor/process.py
starts it. The child looks modules up with ``importlib.util.find_spec``, which
runs no user code (but imports the parent packages of a dotted module, as the
server would). ``deep`` also imports each server's entry module, so a server
installed without one of its own dependencies is caught too (``portico check``;
``portico run`` keeps to the quick look-up before it spawns anything).

With ``modules`` (``portico check``), the app module's source (a ``.py`` file) is
also compiled, never run: a SyntaxError is reported with its line, and the
attribute of ``module:attr`` must have a top-level binding (an assignment, a
``def`` or ``class``, an import) unless the module could bind it out of sight
(``from x import *``, a module ``__getattr__``, ``globals()``, ``setattr``...).

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

from portico.config.app_schema import App
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

# The child: [name, module to import after it is found or "", attribute its source must
# bind or ""] triples in argv[1]; prints one JSON line, {name: null | ["missing", module]
# | ["failed", message] | ["source", message] | ["unbound", attribute, names it binds]}.
_PROBE = """\
import ast, importlib, importlib.util, json, os, sys

HIDDEN = {"globals", "vars", "setattr", "exec", "eval", "__import__", "locals"}


def bindings(tree, attr):
    # The names bound at module level, in order, or None if attr may be bound unseen
    # (as by sys.modules[__name__].attr = ...).
    names, todo, seen = [], list(tree.body), 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and (
                node.attr == attr):
            return None
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return None
        if isinstance(node, ast.Global):
            names += [(node.lineno, node.col_offset, name) for name in node.names]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in HIDDEN):
            return None
    while seen < len(todo):
        node, seen = todo[seen], seen + 1
        at = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append((*at, node.name))
            todo += node.decorator_list
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names += [(*at, a.asname or a.name.partition(".")[0]) for a in node.names]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append((*at, node.id))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.append((*at, node.name))
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            names.append((*at, node.name))
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.append((*at, node.rest))
        todo += ast.iter_child_nodes(node)
    names = [name for _, _, name in sorted(names)]
    return None if "__getattr__" in names else names


def look_at_source(spec, attr):
    # None, or the verdict on the module's source, which is compiled and never run.
    origin = spec.origin or ""
    if not origin.endswith(".py") or not os.path.isfile(origin):
        return None
    try:
        shown = os.path.relpath(origin)
    except ValueError:  # another drive
        shown = origin
    if shown.startswith(".."):
        shown = origin
    with open(origin, "rb") as file:
        source = file.read()
    try:
        tree = compile(source, origin, "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
        compile(tree, origin, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" line {exc.lineno}" if exc.lineno else ""
        return ["source", f"{shown}{where}: {type(exc).__name__}: {exc.msg}"]
    except ValueError as exc:
        return ["source", f"{shown}: {type(exc).__name__}: {exc}"]
    if not attr:
        return None
    names = bindings(tree, attr)
    if names is None or attr in names:
        return None
    for place in spec.submodule_search_locations or ():
        if any(os.path.exists(os.path.join(place, attr + end)) for end in ("", ".py")):
            return None  # a submodule, which the package may import
    shown = [n for n in dict.fromkeys(names) if not n.startswith("_")]
    return ["unbound", attr, ", ".join(shown)]


verdicts = {}
for name, entry, attr in json.loads(sys.argv[1]):
    try:
        spec = importlib.util.find_spec(name)
        if spec is None:
            verdicts[name] = ["missing", name]
            continue
        if entry:
            importlib.import_module(entry)
        verdicts[name] = look_at_source(spec, attr) if attr is not None else None
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
    python: str = sys.executable  # the interpreter that runs it (its ``python``)


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
        names: list[tuple[str, str, str | None]] = [
            (name, ENTRY_MODULE[name] if deep else "", None)
            for name in SERVER_NEEDS[server_of(probe.app)]]
        if modules:
            names.append((_module_of(probe.app), "", _attribute_of(probe.app)))
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
                f"cannot ask {probe.python} about app '{probe.app.name}' (exit status "
                f"{child.returncode})")))
            continue
        problems += _describe(probe, verdicts, file)
    return problems


def _module_of(app: App) -> str:
    target = app.wsgi or app.asgi
    assert target is not None
    return target.partition(":")[0]


def _attribute_of(app: App) -> str:
    """The top-level name ``module:attr`` looks up ("" when there is none to check, as
    for gunicorn's default ``application``)."""
    target = app.wsgi or app.asgi
    assert target is not None
    _, colon, attr = target.partition(":")
    name = attr.strip().partition(".")[0].partition("(")[0].strip()
    return name if colon and name.isidentifier() else ""


def _target_key(probe: AppToProbe) -> str:
    return f"app[{probe.index}].{'asgi' if probe.app.asgi is not None else 'wsgi'}"


def _start(
    probe: AppToProbe, names: list[tuple[str, str, str | None]]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [probe.python, "-c", _PROBE, json.dumps(names)], cwd=probe.cwd,
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
        kind, detail = verdict[0], verdict[1]
        target = probe.app.wsgi or probe.app.asgi
        if kind == "source":
            message = detail
        elif kind == "unbound":
            defined = verdict[2]
            message = (f"module {module} has no top-level {detail!r} "
                       f"({f'it defines: {defined}' if defined else 'it defines nothing'})")
        elif kind == "missing" and (module == detail or module.startswith(detail + ".")):
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
