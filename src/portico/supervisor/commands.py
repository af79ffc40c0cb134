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
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


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


def app_argv(app: AppPlan, doctor: bool = False) -> list[str]:
    """The command line that serves ``app``, trusting only portico's own address; with
    ``doctor``, the app is loaded through the doctor's wrapper (app_env names the app)."""
    host, port = split_bind(app.bind)
    proxy = connect_host(app.bind)
    server = server_of(app)
    # the wrapper is imported from portico's own interpreter only (an app run by another
    # Python, ``python = ...``, may not have portico installed)
    doctor = doctor and getattr(app, "python", None) is None
    if server == "command":
        assert app.command is not None
        fill = {"{port}": str(port), "{host}": host, "{python}": sys.executable}
        return [_fill(part, fill) for part in app.command]
    if server == "gunicorn":
        assert app.wsgi is not None
        return [
            sys.executable, "-m", "gunicorn",
            "--worker-class", "gevent",
            "--workers", str(app.workers),
            "--bind", app.bind,
            "--forwarded-allow-ips", proxy,
            "--keep-alive", "5",
            "--graceful-timeout", f"{app.stop_timeout:g}",
            *_gunicorn_extras(),
            DOCTOR_WSGI if doctor else app.wsgi,
        ]
    if server == "waitress":
        assert app.wsgi is not None
        return [
            sys.executable, "-m", "waitress",
            "--listen", app.bind,
            "--threads", str(max(4, app.workers * 2)),
            "--trusted-proxy", proxy,
            "--trusted-proxy-headers",
            "x-forwarded-for x-forwarded-host x-forwarded-proto x-forwarded-port",
            DOCTOR_WSGI if doctor else app.wsgi,
        ]
    assert app.asgi is not None
    return [
        sys.executable, "-m", "uvicorn",
        "--host", host,
        "--port", str(port),
        "--workers", str(app.workers),
        "--proxy-headers",
        "--forwarded-allow-ips", proxy,
        "--no-access-log",
        *(("--root-path", app.root_path) if app.root_path else ()),
        DOCTOR_ASGI if doctor else app.asgi,
    ]


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text
