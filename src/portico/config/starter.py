"""``portico init``: a commented ``portico.toml`` for the app in a directory.

The app is found by reading source, never by importing it (importing user code
can start servers, open databases or fail for want of settings): the first of
``app.py``, ``wsgi.py``, ``main.py``, ``asgi.py`` and ``server.py`` with a
top-level ``NAME = Flask(`` (or Bottle, Django's ``get_wsgi_application()``,
Pyramid's ``make_wsgi_app()``), or ``NAME = FastAPI(`` / ``Starlette(``, or a
WSGI function ``def NAME(environ, start_response)``. ``--app module:attr``
says it outright.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from portico.supervisor.commands import default_server

CANDIDATES = ("app.py", "wsgi.py", "main.py", "asgi.py", "server.py")
_ASSIGNED = r"^(?P<name>[A-Za-z_]\w*)\s*(?::[^=\n]+)?=\s*(?:[A-Za-z_][\w.]*\.)?"
_ASGI = re.compile(_ASSIGNED + r"(?P<maker>FastAPI|Starlette)\(", re.MULTILINE)
_WSGI = re.compile(
    _ASSIGNED + r"(?P<maker>Flask|Bottle|get_wsgi_application|make_wsgi_app)\(", re.MULTILINE)
_WSGI_FUNCTION = re.compile(r"^def (?P<name>[A-Za-z_]\w*)\(\s*environ\s*,\s*start_response\b",
                            re.MULTILINE)


class StarterError(Exception):
    """Why no config was written, said so the user can act on it."""


@dataclass(frozen=True)
class FoundApp:
    kind: str  # "wsgi" or "asgi"
    target: str  # module:attr
    how: str  # what was seen, for the file's comment: "app.py: app = Flask("


def app_here(directory: Path, target: str | None, server: str | None) -> FoundApp:
    """``--app``'s app, else the one found in ``directory``; StarterError if none is."""
    if target is not None:
        return app_from_option(directory, target, server)
    found = find_app(directory)
    if found is None:
        raise StarterError(
            f"no app found here: looked in {', '.join(CANDIDATES)} for e.g. `app = Flask(`, "
            "`app = FastAPI(` or `def application(environ, start_response)`; name it with "
            "--app module:attr")
    return found


def find_app(directory: Path) -> FoundApp | None:
    """The first app the candidate files define at top level, by a scan of their source."""
    for filename in CANDIDATES:
        path = directory / filename
        try:
            source = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found = scan(source, path.stem, filename)
        if found is not None:
            return found
    return None


def scan(source: str, module: str, filename: str) -> FoundApp | None:
    """The first top-level app definition in ``source`` (the file ``module`` is read from)."""
    matches = [(m.start(), "asgi", m) for m in _ASGI.finditer(source)]
    matches += [(m.start(), "wsgi", m) for m in _WSGI.finditer(source)]
    matches += [(m.start(), "wsgi", m) for m in _WSGI_FUNCTION.finditer(source)]
    if not matches:
        return None
    _, kind, match = min(matches, key=lambda item: item[0])
    name = match.group("name")
    seen = match.group(0).strip() if "maker" in match.groupdict() else f"def {name}(environ, ...)"
    return FoundApp(kind, f"{module}:{name}", f"{filename}: {seen}")


def app_from_option(directory: Path, target: str, server: str | None) -> FoundApp:
    """``--app module:attr``: ASGI when the server is uvicorn, or when the module's
    source makes ``attr`` with FastAPI/Starlette; WSGI otherwise."""
    module, _, attr = target.partition(":")
    if not module or not attr or not re.fullmatch(r"[\w.]+", module) or not attr.isidentifier():
        raise StarterError(f"--app {target!r}: use module:attribute, e.g. --app app:app")
    if server == "uvicorn":
        return FoundApp("asgi", target, "--app")
    path = directory / (module.replace(".", "/") + ".py")
    try:
        found = scan(path.read_text("utf-8"), module, path.name)
    except (OSError, UnicodeDecodeError):
        found = None
    kind = found.kind if found is not None and found.target == target else "wsgi"
    return FoundApp(kind, target, "--app")


def app_name(directory: Path) -> str:
    """The directory's name as an ``[[app]]`` name (letters, digits, ``_.-``)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.name).strip("-.")
    return name or "app"


def asgi_prefix_lines(prefix: str) -> list[str]:
    """The ``[[route]]`` lines after ``path`` and ``app`` for an ASGI app (FastAPI,
    Starlette) published under ``prefix``, comments included; none for ``/``."""
    prefix = prefix.rstrip("/")
    if not prefix:
        return []
    return [
        f"# The prefix is stripped and portico starts uvicorn with --root-path {prefix}:",
        f"# FastAPI serves {prefix}/docs, {prefix}/openapi.json and its redirects under",
        f"# {prefix} once. Set no root_path in the app (docs/guide/fastapi.md).",
        "preserve_path = false",
    ]


def wsgi_prefix_lines(prefix: str) -> list[str]:
    return [
        f"# {prefix}/x reaches the app as /x, with X-Forwarded-Prefix: {prefix}. For its",
        f"# links and redirects to include {prefix}, wrap the app once (Flask; `portico explain`",
        "# says more):",
        "#   from werkzeug.middleware.proxy_fix import ProxyFix",
        "#   app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)",
    ]


def starter_text(
    found: FoundApp, name: str, prefix: str, server: str | None, listen: str
) -> str:
    """The commented config; it passes ``portico check`` when the app's server is installed
    and the listen port is free."""
    if found.kind == "asgi":
        if server not in (None, "uvicorn"):
            raise StarterError(f"{found.target} is an ASGI app: it is served by uvicorn, "
                               f"not {server} (leave out --server)")
        server_line = _commented('server = "uvicorn"', "ASGI apps are served by uvicorn")
    else:
        if server == "uvicorn":
            raise StarterError(f"{found.target} is a WSGI app: serve it with gunicorn or "
                               "waitress, or give an ASGI app to --app")
        chosen = server or default_server()
        other = "waitress" if chosen == "gunicorn" else "gunicorn"
        what = "with gevent workers" if chosen == "gunicorn" else "threads"
        server_line = _commented(f'server = "{chosen}"', f'{what}; or "{other}"')
    base = f"http://{listen.split('://', 1)[-1].rstrip('/')}"
    public = base + ("/" if prefix == "/" else prefix + "/")
    lines = [
        "# portico.toml, written by `portico init`. `portico check` checks it here (files,",
        "# ports, imports); `portico run` serves it. Both read ./portico.toml when no -c is given.",
        "# Every key: docs/reference/config.md; the first run: docs/guide/first-run.md.",
        "",
        "[server]",
        "# Where clients connect; for HTTPS add \"https://0.0.0.0:8443\" and a [[tls.certificate]]",
        f"listen = [\"{listen}\"]",
        "",
        "[[app]]",
        "# The app portico starts, keeps up (restarts with backoff) and stops with itself.",
        f"name = \"{name}\"",
        _commented(f'{found.kind} = "{found.target}"', _how(found)),
        server_line,
        "workers = 2",
        _commented('cwd = "."', "where the module is, relative to this file; on PYTHONPATH"),
        _commented('# bind = "127.0.0.1:8000"', "left out: portico picks a free loopback port"),
        _commented('# health = "/healthz"', "answers below 500 when the app is up (default: /)"),
        "# env = { APP_MODE = \"prod\" }",
        "",
        "[[route]]",
        f"# Served at {public}",
        _commented(f'path = "{prefix}"', 'the public prefix, e.g. "/myapp"; "/" is the whole site'),
        f"app = \"{name}\"",
    ]
    if prefix != "/":
        lines += asgi_prefix_lines(prefix) if found.kind == "asgi" else wsgi_prefix_lines(prefix)
    return "\n".join(lines) + "\n"


def _commented(code: str, comment: str) -> str:
    return f"{code:<28} # {comment}"


def _how(found: FoundApp) -> str:
    if found.how == "--app":
        return "given with --app"
    return f"found in {found.how}"
