"""``[[app]]``: the schema of an app portico starts, keeps up and stops with itself."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from portico.config.instances import instance_binds, parse_bind
from portico.config.table import Table
from portico.config.units import Duration, Size
from portico.settings import ClientTimeouts, HeadLimits, PoolSettings, RouteLimits

# The runtime types' defaults are the schema's: each is written once (portico/settings.py).
_HEAD, _CLIENT, _ROUTE, _POOL = HeadLimits(), ClientTimeouts(), RouteLimits(), PoolSettings()



class App(Table):
    """``[[app]]``: an app portico starts, keeps up and stops with itself."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """What routes (``app = "..."``), the status and the logs call it."""
    wsgi: str | None = None
    """``module:callable`` of a WSGI app, e.g. ``server:app``."""
    asgi: str | None = None
    """``module:callable`` of an ASGI app, served by uvicorn; under one stripped route
    prefix, with ``--root-path PREFIX`` (docs/guide/fastapi.md)."""
    command: list[str] | None = None
    """Any command instead; ``{host}``, ``{port}`` and ``{python}`` (portico's own
    interpreter) are filled in."""
    server: Literal["gunicorn", "waitress", "uvicorn"] | None = None
    """gunicorn with gevent workers (POSIX default for ``wsgi``), waitress (Windows
    default), or uvicorn (the default, and only choice, for ``asgi``)."""
    workers: int = Field(2, ge=1)
    """Worker processes of gunicorn or uvicorn; waitress runs twice as many threads
    (at least 4). Not used for ``command``."""
    cwd: str | None = None
    """Working directory, relative to the config file; also put on PYTHONPATH."""
    env: dict[str, str] = {}
    """Environment variables added to portico's own for the app."""
    bind: str | None = None
    """Where the app listens, ``HOST:PORT``; left out, portico picks a free loopback port.
    With ``instances = N``: a base port (``HOST:PORT``, the N ports from it) or a range
    of N ports (``HOST:FIRST-LAST``)."""
    instances: int = Field(1, ge=1, le=64)
    """Copies of the app, each on its own port; the routes to the app balance over them
    and ``portico app restart`` restarts them one by one (docs/guide/apps.md)."""
    args: list[str] = []
    """Extra arguments to the server (gunicorn, uvicorn or waitress), before the app,
    e.g. ``["--timeout", "60"]``. Not used for ``command``."""
    python: str | None = None
    """The interpreter to run the server with (a path, relative to the config file), or
    a virtualenv directory (its ``bin/python``); default: portico's own."""
    health: str | None = None
    """Path probed with a GET for readiness and liveness (default ``/``): any status
    below 500 counts as an answer. A bare TCP connect never does, since gunicorn's
    master accepts connections while its workers fail to boot."""
    start_timeout: Duration = 30.0
    """How long the app may take to become ready: listening on ``bind`` (its own
    processes, not another program's) and answering the health path below 500."""
    listener_check: bool = True
    """On Linux, once the app answers, every socket listening on ``bind`` must be held by
    the app's own processes (its process group), so another program that took the port
    is never routed to. ``false`` for an app whose port is served by a process it hands
    it to: ``docker run -p`` (docker-proxy), a server that daemonizes."""
    health_interval: Duration = 10.0
    """Once up, the app is probed this often (one GET, ``Connection: close``)."""
    health_timeout: Duration = 5.0
    """A probe with no answer within this counts as failed (as do a refused
    connection and a status of 500 or more)."""
    unhealthy_after: int = 3
    """Failed probes in a row after which the app is restarted (SIGTERM, then SIGKILL
    after ``stop_timeout``), counted like a crash for backoff and ``max_restarts``."""
    stop_timeout: Duration = 10.0
    """Grace between SIGTERM and SIGKILL when stopping."""
    max_restarts: int = Field(5, ge=0)
    """Crashes allowed within ``restart_window``; one more and the app is marked failed."""
    restart_window: Duration = 60.0
    """The window in which ``max_restarts`` crashes are counted."""
    restart_delay_max: Duration = 30.0
    """Restarts back off exponentially from 0.25 s up to this."""
    request_wait: Duration = 5.0
    """How long a request waits for a restarting app before it gets 503."""
    log_max_size: Size = 10 * 2**20
    """The app's log file is rotated at this size..."""
    log_backups: int = Field(3, ge=0)
    """...keeping this many old files."""

    @field_validator("bind")
    @classmethod
    def _bind(cls, bind: str | None) -> str | None:
        if bind is not None:
            parse_bind(bind)
        return bind

    @field_validator("health")
    @classmethod
    def _health(cls, path: str | None) -> str | None:
        if path is not None and (not path.startswith("/") or any(c in path for c in " \r\n#")):
            raise ValueError(f"invalid health path {path!r}: use a path like \"/healthz\"")
        return path

    @field_validator("health_interval", "health_timeout")
    @classmethod
    def _positive(cls, seconds: float, info: ValidationInfo) -> float:
        if seconds <= 0:
            raise ValueError(
                f"invalid {info.field_name} {seconds:g}: use a duration above zero, e.g. \"5s\""
            )
        return seconds

    @field_validator("unhealthy_after", mode="before")
    @classmethod
    def _unhealthy_after(cls, count: object) -> object:
        if type(count) is int and 1 <= count <= 1000:
            return count
        raise ValueError(
            f"invalid unhealthy_after {count!r}: use a whole number of failed probes in a "
            "row, from 1 to 1000, e.g. 3"
        )

    @model_validator(mode="after")
    def _one_kind(self) -> App:
        given = [key for key in ("wsgi", "asgi", "command") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("an app needs exactly one of 'wsgi', 'asgi' or 'command'")
        if self.asgi is not None and self.server not in (None, "uvicorn"):
            raise ValueError("an 'asgi' app is served by uvicorn; leave out 'server'")
        if self.wsgi is not None and self.server == "uvicorn":
            raise ValueError("uvicorn serves 'asgi' apps; for 'wsgi' use gunicorn or waitress")
        if self.command is not None and self.server is not None:
            raise ValueError("'server' applies to 'wsgi'/'asgi' apps, not to 'command'")
        if self.bind is not None:
            instance_binds(self.bind, self.instances)
        return self
