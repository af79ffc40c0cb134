"""The admin API: a Starlette app over an AdminContext (admin/facade.py).

Every endpoint is declared in admin/endpoints.py (method, path, scope); this module
gives each its handler. The guard (admin/guard.py) wraps the whole app, so no route,
the UI's included, is reachable without passing it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route

from portico.admin.endpoints import ENDPOINTS
from portico.admin.facade import AdminContext, etag_of

Handler = Callable[[Request], Awaitable[Response]]


class Json(JSONResponse):
    """JSON with ``<``, ``>`` and ``&`` escaped: a route named ``<script>`` stays data
    even if something renders the body as HTML (S8)."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False)
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        return text.encode() + b"\n"


def error(status: int, message: str, **extra: Any) -> Json:
    return Json({"error": message, **extra}, status_code=status)


def context(request: Request) -> AdminContext:
    admin: AdminContext = request.app.state.admin
    return admin


def actor(request: Request) -> str:
    """Who is calling, for the audit log (set by the guard)."""
    who: str = request.scope.get("portico.actor", "unknown")
    return who


async def body_json(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


class BadRequest(Exception):
    pass


# -- reads -----------------------------------------------------------------------------

async def status(request: Request) -> Response:
    return Json(await context(request).snapshot())


async def config(request: Request) -> Response:
    admin = context(request)
    text = admin.config_text()
    tag = etag_of(text)
    return Json({"file": str(admin.config_file) if admin.config_file else None,
                 "editable": admin.config_file is not None,
                 "text": text.decode("utf-8", "replace"), "etag": tag},
                headers={"ETag": tag})


async def routes(request: Request) -> Response:
    return Json(context(request).routes())


async def backends(request: Request) -> Response:
    return Json(context(request).backends())


async def apps(request: Request) -> Response:
    return Json(context(request).apps.apps_status())


async def listeners(request: Request) -> Response:
    admin = context(request)
    snap = await admin.snapshot()
    return Json({"listen": snap["listen"], "workers": snap["workers"],
                 "admin": {"control": "unix socket (0600)", "tcp": admin.admin.listen}})


async def certificates(request: Request) -> Response:
    return Json((await context(request).snapshot())["certificates"])


async def counters(request: Request) -> Response:
    snap = await context(request).snapshot()
    return Json({"time": time.time(), "connections": snap["connections"],
                 "requests": snap["requests"], "workers": snap["workers"]})


async def counters_stream(request: Request) -> Response:
    """Server-sent events: the counters every ``interval`` seconds (0.2 to 10, 1 by
    default) until the client goes (the UI's live numbers)."""
    admin = context(request)
    try:
        interval = min(10.0, max(0.2, float(request.query_params.get("interval", "1"))))
    except ValueError:
        raise BadRequest("interval is a number of seconds") from None

    async def events() -> AsyncIterator[str]:
        while True:
            snap = await admin.snapshot()
            row = {"time": time.time(), "connections": snap["connections"],
                   "requests": snap["requests"],
                   "apps": {a["name"]: a["state"] for a in snap["apps"]}}
            yield f"data: {json.dumps(row)}\n\n"
            await asyncio.sleep(interval)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


async def openapi(request: Request) -> Response:
    from portico.admin.openapi import schema

    return Json(schema())


async def metrics(request: Request) -> Response:
    render = context(request).metrics
    text = None if render is None else render()
    if text is None:
        return error(404, "metrics are off: set [metrics] enabled = true")
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


async def whoami(request: Request) -> Response:
    return Json({"actor": request.scope.get("portico.actor"),
                 "scope": request.scope.get("portico.scope"),
                 "transport": request.scope.get("portico.transport")})


# -- acts ------------------------------------------------------------------------------

async def reload(request: Request) -> Response:
    from portico.admin.audit import record

    admin = context(request)
    ok, why = await admin.reload()
    record(admin, request, "reload", None, {"reloaded": ok, "error": why})
    if not ok:
        return error(409, why or "reload refused", reloaded=False)
    return Json({"reloaded": True})


def _instances(admin: AdminContext, name: str) -> list[dict[str, Any]]:
    """The rows of the app ``name``'s instances (an app row's ``app`` is its group)."""
    return [row for row in admin.apps.apps_status() if row.get("app", row["name"]) == name]


async def app_detail(request: Request) -> Response:
    admin = context(request)
    name = request.path_params["name"]
    rows = _instances(admin, name)
    if not rows:
        return _no_app(admin, name)
    return Json(rows)


def _no_app(admin: AdminContext, name: str) -> Json:
    known = dict.fromkeys(row.get("app", row["name"]) for row in admin.apps.apps_status())
    return error(404, f"no app {name!r}; the apps are: {', '.join(known) or 'none'}")


def app_action(verb: str) -> Handler:
    async def act(request: Request) -> Response:
        from portico.admin.audit import record
        from portico.supervisor.process import AppStartError

        admin = context(request)
        name = request.path_params["name"]
        method = {"restart": admin.apps.restart_app, "stop": admin.apps.stop_app,
                  "start": admin.apps.start_app}[verb]
        try:
            done = method(name)
            if inspect.isawaitable(done):  # the Runtime's may be plain or async
                await done
        except LookupError:  # UnknownApp
            return _no_app(admin, name)
        except AppStartError as exc:  # an instance did not come back: why, and its output
            record(admin, request, f"app.{verb}", name, {"ok": False, "error": str(exc)})
            return Json({"error": str(exc), "reason": exc.reason,
                         "output": exc.stderr_tail[-20:]}, status_code=502)
        except Exception as exc:
            record(admin, request, f"app.{verb}", name, {"ok": False, "error": str(exc)})
            return error(500, f"{verb} {name}: {exc}")
        record(admin, request, f"app.{verb}", name, {"ok": True})
        return Json({"app": name, "action": verb, "instances": _instances(admin, name)})

    return act


async def backend_action(request: Request) -> Response:
    admin = context(request)
    verb = request.url.path.rsplit("/", 1)[1]
    if admin.drains is None:
        return error(501, f"{verb}: this portico cannot drain backends")
    from portico.admin.audit import record

    target = request.path_params["backend"]
    act = admin.drains.drain if verb == "drain" else admin.drains.enable
    try:
        result = await act(target)
    except LookupError as exc:
        return error(404, str(exc))
    except ValueError as exc:  # the only backend of a route
        record(admin, request, f"backend.{verb}", target, {"ok": False, "error": str(exc)})
        return error(409, str(exc))
    record(admin, request, f"backend.{verb}", target, {"ok": True, **result})
    return Json({"backend": target, "action": verb, **result})


HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", "/status"): status,
    ("GET", "/api/status"): status,
    ("GET", "/api/config"): config,
    ("GET", "/api/routes"): routes,
    ("GET", "/api/backends"): backends,
    ("GET", "/api/apps"): apps,
    ("GET", "/api/apps/{name}"): app_detail,
    ("GET", "/api/listeners"): listeners,
    ("GET", "/api/certificates"): certificates,
    ("GET", "/api/counters"): counters,
    ("GET", "/api/counters/stream"): counters_stream,
    ("GET", "/api/openapi.json"): openapi,
    ("GET", "/api/whoami"): whoami,
    ("GET", "/metrics"): metrics,
    ("POST", "/api/reload"): reload,
    ("POST", "/api/apps/{name}/restart"): app_action("restart"),
    ("POST", "/api/apps/{name}/stop"): app_action("stop"),
    ("POST", "/api/apps/{name}/start"): app_action("start"),
    ("POST", "/api/backends/{backend}/drain"): backend_action,
    ("POST", "/api/backends/{backend}/enable"): backend_action,
}


def extra_handlers() -> dict[tuple[str, str], Handler]:
    """The config editing, token and session endpoints (their own modules)."""
    from portico.admin import config_api, session_api

    return {**config_api.HANDLERS, **session_api.HANDLERS}


def _guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except BadRequest as exc:
            return error(400, str(exc))

    return run


def build_routes() -> list[BaseRoute]:
    handlers = {**HANDLERS, **extra_handlers()}
    routes: list[BaseRoute] = []
    for endpoint in ENDPOINTS:
        handler = handlers.get((endpoint.method, endpoint.path))
        assert handler is not None, f"no handler for {endpoint.method} {endpoint.path}"
        routes.append(Route(endpoint.path, _guarded(handler), methods=[endpoint.method]))
    from portico.admin.ui import ui_routes

    routes.append(Mount("/ui", routes=ui_routes()))
    return routes


def create_app(admin: AdminContext) -> Callable[..., Awaitable[None]]:
    """The admin ASGI app: the routes behind the guard."""
    from portico.admin.guard import Guard

    app = Starlette(routes=build_routes())
    app.state.admin = admin
    guard: Callable[..., Awaitable[None]] = Guard(app, admin)
    return guard
