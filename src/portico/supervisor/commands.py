"""How each app is served: its address, its server's command line, the trust it is given.

Each server is told to trust forwarded headers from portico's own address
only (gunicorn/uvicorn ``--forwarded-allow-ips``, waitress ``--trusted-proxy``),
never ``*``. An ``asgi`` app routed under one stripped prefix is started with
``--root-path PREFIX`` (config/compile.py ``asgi_root_path``).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from portico.config.plan import AppPlan
from portico.doctor.hook import APP_ENV as DOCTOR_APP_ENV

# The server loads the app through the doctor's wrapper: the app itself, untouched, for
# every request but the one marked with this run's secret (doctor/hook.py).
DOCTOR_WSGI = "portico.doctor.hook:wsgi"
DOCTOR_ASGI = "portico.doctor.hook:asgi"


def default_server() -> str:
    return "waitress" if sys.platform == "win32" else "gunicorn"


def server_name(command: object, asgi: str | None, server: str | None) -> str:
    """``gunicorn``, ``waitress``, ``uvicorn`` or ``command``: what serves an app with
    these settings (its ``[[app]]`` entry or its plan)."""
    if command is not None:
        return "command"
    if asgi is not None:
        return "uvicorn"
    return server or default_server()


def server_of(app: AppPlan) -> str:
    return server_name(app.command, app.asgi, app.server)


def app_cwd(base_dir: Path, cwd: str | None) -> Path:
    """An app's working directory: its ``cwd``, relative to the config's directory."""
    return (base_dir / cwd).resolve() if cwd else base_dir


def app_env(env: dict[str, str], cwd: Path, app: AppPlan | None = None) -> dict[str, str]:
    """The environment an app runs in: portico's own, the app's ``env`` over it, and
    ``cwd`` first on ``PYTHONPATH`` (so ``module:attr`` is found there); for the doctor's
    wrapper (doctor/hook.py), the real ``module:attr`` of a ``wsgi``/``asgi`` app."""
    merged = {**os.environ, **env}
    if app is not None and app.command is None:
        merged[DOCTOR_APP_ENV] = app.wsgi or app.asgi or ""
    merged["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), merged.get("PYTHONPATH")]))
    return merged


def split_bind(bind: str) -> tuple[str, int]:
    """(host, port); of a range (``instances``), its first port."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port.partition("-")[0])


def connect_host(bind: str) -> str:
    """Where portico reaches an app bound to ``bind`` (a wildcard bind is reached on loopback)."""
    host, _ = split_bind(bind)
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


@functools.cache
def _gunicorn_extras() -> tuple[str, ...]:
    """gunicorn 25+ opens a control socket at one fixed path per user; two apps would
    share it, and portico supervises the app itself, so it is turned off."""
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return ()
    clis = {flag for setting in KNOWN_SETTINGS for flag in setting.cli or ()}
    return ("--no-control-socket",) if "--no-control-socket" in clis else ()


def interpreter(python: str | None, base_dir: Path | None = None) -> str:
    """The Python an app runs with: ``python`` (a file, or a virtualenv directory: its
    ``bin/python``), relative to ``base_dir``; portico's own without one."""
    if python is None:
        return sys.executable
    path = Path(python).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        path = path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    return str(path)


def app_argv(app: AppPlan, doctor: bool = False) -> list[str]:
    """The command line that serves ``app`` (one instance: ``app.bind``), trusting only
    portico's own address; the app's ``args`` go before the app itself. With ``doctor``,
    the app is loaded through the doctor's wrapper (app_env names the app)."""
    host, port = split_bind(app.bind)
    proxy = connect_host(app.bind)
    server = server_of(app)
    python = interpreter(app.python)
    # the wrapper is imported from portico's own interpreter only (an app run by another
    # Python, ``python = ...``, may not have portico installed)
    doctor = doctor and app.python is None
    if server == "command":
        assert app.command is not None
        fill = {"{port}": str(port), "{host}": host, "{python}": python}
        return [_fill(part, fill) for part in app.command]
    if server == "gunicorn":
        assert app.wsgi is not None
        return [
            python, "-m", "gunicorn",
            "--worker-class", "gevent",
            "--workers", str(app.workers),
            "--bind", app.bind,
            "--forwarded-allow-ips", proxy,
            "--keep-alive", "5",
            "--graceful-timeout", f"{app.stop_timeout:g}",
            *_gunicorn_extras(),
            *app.args,
            DOCTOR_WSGI if doctor else app.wsgi,
        ]
    if server == "waitress":
        assert app.wsgi is not None
        return [
            python, "-m", "waitress",
            "--listen", app.bind,
            "--threads", str(max(4, app.workers * 2)),
            "--trusted-proxy", proxy,
            "--trusted-proxy-headers",
            "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port",
            *app.args,
            DOCTOR_WSGI if doctor else app.wsgi,
        ]
    assert app.asgi is not None
    return [
        python, "-m", "uvicorn",
        "--host", host,
        "--port", str(port),
        "--workers", str(app.workers),
        "--proxy-headers",
        "--forwarded-allow-ips", proxy,
        "--no-access-log",
        *(("--root-path", app.root_path) if app.root_path else ()),
        *app.args,
        DOCTOR_ASGI if doctor else app.asgi,
    ]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text
