"""An ``[[app]]``'s instances: how many copies run, and the port each listens on.

``bind`` names one address (``HOST:PORT``) or, for ``instances = N``, a base port
(``HOST:PORT``: ports PORT to PORT+N-1) or a range (``HOST:FIRST-LAST``, exactly N
ports). Each instance is supervised alone (its own process group, log and
availability gate) and each is one backend of the routes to the app.
"""

from __future__ import annotations

import re
from typing import Final

from portico.config.backends import BackendPlan

_BIND: Final = re.compile(r"^(?P<host>.+):(?P<first>\d{1,5})(?:-(?P<last>\d{1,5}))?$")


def parse_bind(bind: str) -> tuple[str, int, int | None]:
    """(host, first port, last port or None); ValueError saying what would be valid."""
    found = _BIND.match(bind)
    example = '"127.0.0.1:8000", or "127.0.0.1:8000-8003" for instances = 4'
    if found is None:
        raise ValueError(f"invalid bind {bind!r}: use HOST:PORT, e.g. {example}")
    first = int(found["first"])
    last = int(found["last"]) if found["last"] else None
    if not 0 < first < 65536 or (last is not None and not first <= last < 65536):
        raise ValueError(f"invalid bind {bind!r}: ports run from 1 to 65535, e.g. {example}")
    return found["host"], first, last


def instance_binds(bind: str, instances: int) -> list[str]:
    """The address of each instance, in order; ValueError if a range does not hold
    exactly ``instances`` ports."""
    host, first, last = parse_bind(bind)
    if last is not None and last - first + 1 != instances:
        raise ValueError(
            f"bind {bind!r} holds {last - first + 1} ports but instances = {instances}: give "
            f"a range of {instances} ports, or one base port (instances use it and the "
            "ones after it)")
    if first + instances - 1 > 65535:
        raise ValueError(f"bind {bind!r}: {instances} instances from port {first} pass 65535")
    return [f"{host}:{first + i}" for i in range(instances)]


def instance_name(app: str, index: int, instances: int) -> str:
    """The name of an instance's gate, log and status row: the app's own for a single
    instance, ``app#2`` (counted from 1) for each of several."""
    return app if instances == 1 else f"{app}#{index + 1}"


def app_backends(app: str, bind: str | None, instances: int) -> tuple[BackendPlan, ...]:
    """The backends of a route to the app: one per instance, each following its own
    gate (port 0 while the ports are unassigned: ``portico check``)."""
    if bind is None:
        return tuple(BackendPlan("http", "127.0.0.1", 0, app=instance_name(app, i, instances))
                     for i in range(instances))
    from portico.supervisor.commands import connect_host, split_bind

    return tuple(
        BackendPlan("http", connect_host(each), split_bind(each)[1],
                    app=instance_name(app, i, instances))
        for i, each in enumerate(instance_binds(bind, instances)))
