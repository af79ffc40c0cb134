"""What the control socket answers beyond ``GET /status``: app actions (and metrics).

    GET  /api/apps                   every app instance's state (JSON list)
    GET  /api/apps/NAME              one app's instances; 404 if there is no such app
    POST /api/apps/NAME/restart      rolling restart; answers once it is done
    POST /api/apps/NAME/stop         stop every instance
    POST /api/apps/NAME/start        start the instances that are not running
    GET  /metrics                    Prometheus text, when ``[metrics]`` is on

The admin API (issue 19) serves the same paths with the same answers; this is
the minimal form the ``portico app`` commands talk to.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from portico.supervisor.process import AppStartError
from portico.supervisor.supervisor import Supervisor, UnknownApp

JSON = "application/json"
Answer = tuple[int, str, bytes]
ACTIONS = ("restart", "stop", "start")


def _json(code: int, value: Any) -> Answer:
    return code, JSON, json.dumps(value, indent=2).encode() + b"\n"


async def app_request(supervisor: Supervisor, method: str, path: str) -> Answer | None:
    """The answer to an ``/api/apps`` request; None for a path that is not one."""
    parts = path.strip("/").split("/")
    if parts[:2] != ["api", "apps"] or len(parts) > 4:
        return None
    try:
        if len(parts) <= 3:
            if method != "GET":
                return _json(405, {"error": f"use GET {path}"})
            name = parts[2] if len(parts) == 3 else None
            return _json(200, supervisor.apps_status(name))
        name, action = parts[2], parts[3]
        if action not in ACTIONS:
            return _json(404, {"error": f"no action {action!r}: use {', '.join(ACTIONS)}"})
        if method != "POST":
            return _json(405, {"error": f"use POST {path}"})
        await getattr(supervisor, f"{action}_app")(name)
        return _json(200, {"app": name, "action": action,
                           "instances": supervisor.apps_status(name)})
    except UnknownApp as exc:
        return _json(404, {"error": str(exc)})
    except AppStartError as exc:
        return _json(502, {"error": str(exc), "reason": exc.reason,
                           "output": exc.stderr_tail[-20:]})


Extra = Callable[[str, str], Awaitable[Answer | None]]


def control_actions(supervisor: Supervisor, *more: Extra) -> Extra:
    """The control socket's ``actions``: the app requests, then each of ``more``."""

    async def actions(method: str, path: str) -> Answer | None:
        answer = await app_request(supervisor, method, path)
        for extra in more:
            if answer is not None:
                break
            answer = await extra(method, path)
        return answer

    return actions
