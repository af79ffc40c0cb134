"""What ``portico run`` would refuse on this machine, found without binding or issuing.

``portico check`` runs these after the file itself is valid (config/load.py):
certificate and key files readable, current and matching, CA files present,
every app's ``cwd`` a directory, the listen and app bind ports free (naming
the process that holds one: portico/ports.py), and each app's server and
module importable by the interpreter that will run it (config/importable.py).
Every problem is reported, not just the first, each as ``file: key: what to
change``.

Nothing here has side effects: a ``self_signed`` certificate, which ``run``
issues from the local CA when it is first needed, is not looked for, and no
port is bound to find out whether it is free.
"""

from __future__ import annotations

from pathlib import Path

from portico.config.importable import AppToProbe, import_problems
from portico.config.instances import instance_binds
from portico.config.listen import parse_listen
from portico.config.rules_compile import rewrite_problems
from portico.config.schema import Config
from portico.errors import ConfigError
from portico.ports import holder_of
from portico.supervisor.commands import app_cwd, interpreter, split_bind


def preflight(config: Config, base_dir: Path, file: str) -> list[ConfigError]:
    """Every problem ``portico run`` would stop at (or an app would fail on) here."""
    problems = certificate_problems(config, base_dir, file)
    problems += rewrite_problems(config, base_dir, file)
    problems += port_problems(config, file)
    probes = []
    for index, app in enumerate(config.app):
        cwd = app_cwd(base_dir, app.cwd)
        python = interpreter(app.python, base_dir)
        if not Path(python).is_file():
            problems.append(ConfigError(file, f"app[{index}].python", (
                f"{python} is not an interpreter: give a python executable or a virtualenv "
                f"directory (its bin/python), relative to {base_dir}")))
        elif cwd.is_dir():
            probes.append(AppToProbe(index, app, cwd, python))
        else:
            problems.append(ConfigError(file, f"app[{index}].cwd", (
                f"{cwd} is not a directory: create it, or fix the path (relative to "
                f"{base_dir})")))
    problems += import_problems(probes, file, modules=True, deep=True)
    return problems


def server_problems(config: Config, base_dir: Path, file: str) -> list[ConfigError]:
    """The quick look ``portico run`` takes before it spawns anything: is each app's server
    (and gevent, for gunicorn) installed for the interpreter that runs it? A missing
    ``cwd`` is left to the supervisor, which names it when it starts the app."""
    probes = [AppToProbe(index, app, cwd, python) for index, app in enumerate(config.app)
              if app.command is None and (cwd := app_cwd(base_dir, app.cwd)).is_dir()
              and Path(python := interpreter(app.python, base_dir)).is_file()]
    return import_problems(probes, file, modules=False, deep=False)


def certificate_problems(config: Config, base_dir: Path, file: str) -> list[ConfigError]:
    from portico.tls.store import CertError, CertSource, check  # cryptography, when needed

    problems = []
    for index, spec in enumerate(config.tls.certificate):
        if spec.self_signed:
            continue  # issued by `portico run` from the local CA
        assert spec.cert is not None and spec.key is not None
        source = CertSource(tuple(spec.hosts), base_dir / spec.cert, base_dir / spec.key,
                            f"tls.certificate[{index}]")
        try:
            check(source)
        except CertError as exc:
            field = "key" if exc.path == source.key else "cert"
            problems.append(ConfigError(file, f"tls.certificate[{index}].{field}", str(exc)))
    for index, route in enumerate(config.route):
        if route.ca is not None and not (base_dir / route.ca).is_file():
            problems.append(ConfigError(file, f"route[{index}].ca", (
                f"{base_dir / route.ca}: no such file (a PEM file of CA certificates)")))
    return problems


def port_problems(config: Config, file: str) -> list[ConfigError]:
    problems = []
    for index, url in enumerate(config.server.listen):
        _, host, port = parse_listen(url)
        holder = holder_of(host, port)
        if holder is not None:
            problems.append(ConfigError(file, f"server.listen[{index}]", (
                f"{host}:{port} is in use by {holder}: stop it, or listen on another port")))
    for index, app in enumerate(config.app):
        if app.bind is None:
            continue  # portico picks a free port when it starts
        for bind in instance_binds(app.bind, app.instances):
            host, port = split_bind(bind)
            holder = holder_of(host, port)
            if holder is not None:
                problems.append(ConfigError(file, f"app[{index}].bind", (
                    f"{bind} is in use by {holder}: stop it, choose another port, or leave "
                    "bind out (portico then picks a free one)")))
    return problems
