"""The UI's pages: overview, one app, one route (URL tester, doctor probe), config,
audit log, and the live event stream that keeps them current.

``page_routes(source_of)`` are the routes; ``source_of(request)`` gives the running
portico (admin/ui/source.py). The admin API mounts them at ``/ui`` behind its guard
(admin/ui/__init__.py); ``create_ui(source)`` serves them on their own (tests). Pages
only read; every action (app restart, config apply, rollback) is a call from the
browser to the ``/api/`` endpoint the CLI uses, so the two never drift."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from portico.admin.ui.security import SecurityHeaders
from portico.admin.ui.source import StatusSource, access_tail, tail
from portico.admin.ui.traffic import Rates, parse

HERE = Path(__file__).parent
TICK = 1.0  # seconds between live updates


SourceOf = Callable[[Request], StatusSource]


def create_ui(source: StatusSource, tick: float = TICK) -> SecurityHeaders:
    """The pages as an app of their own, with their security headers."""
    return SecurityHeaders(Starlette(routes=page_routes(lambda _request: source, tick)))


def page_routes(source_of: SourceOf, tick: float = TICK) -> list[BaseRoute]:
    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape(default=True))

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        html = templates.get_template(name).render(base=base, **context)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def overview(request: Request) -> Response:
        source = source_of(request)
        return page(request, "overview.html", info=await source.status(), tick=tick,
                    backends=await source.backends())

    async def app_page(request: Request) -> Response:
        source = source_of(request)
        info = await source.status()
        app = next((a for a in info["apps"] if a["name"] == request.path_params["name"]), None)
        if app is None:
            return PlainTextResponse("no such app", status_code=404)
        routes = [r for r in info["routes"] if r["app"] == app["name"]]
        access = await asyncio.to_thread(access_tail, await source.plan(),
                                         [r["route"] for r in routes])
        return page(request, "app.html", app=app, routes=routes, access=access,
                    log=await asyncio.to_thread(tail, app.get("log")))

    async def route_page(request: Request) -> Response:
        source = source_of(request)
        info = await source.status()
        index = request.path_params["index"]
        if index >= len(info["routes"]):
            return PlainTextResponse("no such route", status_code=404)
        route = info["routes"][index]
        host, slash, path = route["route"].partition("/")
        return page(request, "route.html", route=route, index=index,
                    sample_path=slash + path.rstrip("/") + "/x", sample_host=host)

    async def doctor(request: Request) -> Response:
        source = source_of(request)
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return PlainTextResponse("cross-site request refused", status_code=403)
        info = await source.status()
        index = request.path_params["index"]
        if index >= len(info["routes"]):
            return PlainTextResponse("no such route", status_code=404)
        report = await source.doctor(info["routes"][index]["route"])
        return page(request, "doctor.html", report=report)

    async def tester(request: Request) -> Response:
        source = source_of(request)
        from portico.admin.ui.tester import try_url

        url = request.query_params.get("url", "/")[:2048]
        host = request.query_params.get("host", "")[:255] or None
        plan = await source.plan()
        result = try_url(plan, url, host) if plan is not None else None
        return page(request, "tester.html", result=result)

    async def config_page(request: Request) -> Response:
        from portico.admin.endpoints import allows

        if "portico.transport" in request.scope and not allows(
                request.scope.get("portico.scope") or "", "admin"):
            # as GET /api/config: the file may hold secrets (header values, app env)
            return PlainTextResponse("the config page needs the admin scope",
                                     status_code=403)
        config = await source_of(request).config()
        if config is None:
            return PlainTextResponse("the config is only shown by the admin server",
                                     status_code=404)
        return page(request, "config.html", config=config)

    async def audit_page(request: Request) -> Response:
        entries = await source_of(request).audit()
        return page(request, "audit.html", entries=list(reversed(entries or [])))

    async def events(request: Request) -> Response:
        source = source_of(request)
        app_name = request.query_params.get("app")
        base = request.scope.get("root_path", "")
        plan = await source.plan() if app_name else None
        rates = Rates()

        async def stream() -> AsyncIterator[str]:
            while not await request.is_disconnected():
                info = await source.status()
                scraped = await source.metrics()
                totals = parse(scraped) if scraped else None
                traffic = rates.update(totals, time.monotonic()) if totals else None
                counts = {"t": time.time(), "connections": info["connections"],
                          "requests": info["requests"],
                          "per_second": round(sum(r.per_second for r in traffic), 2)
                          if traffic is not None else None,
                          "apps": {a["name"]: a["state"] for a in info["apps"]}}
                yield f"event: counts\ndata: {json.dumps(counts)}\n\n"
                if not app_name:  # the overview's tables
                    fragment = templates.get_template("live.html").render(
                        info=info, base=base, traffic=traffic,
                        backends=await source.backends())
                    yield _sse("overview", fragment)
                else:
                    app = next((a for a in info["apps"] if a["name"] == app_name), None)
                    if app is not None:
                        lines = await asyncio.to_thread(tail, app.get("log"))
                        yield _sse("log", templates.get_template("log.html").render(log=lines))
                        labels = [r["route"] for r in info["routes"] if r["app"] == app_name]
                        access = await asyncio.to_thread(access_tail, plan, labels)
                        yield _sse("access", templates.get_template("log.html")
                                   .render(log=access, empty="(no requests logged to a file)"))
                        yield _sse("app", templates.get_template("app_state.html")
                                   .render(app=app))
                await asyncio.sleep(tick)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    return [
        Route("/", overview),
        Route("/apps/{name}", app_page),
        Route("/routes/{index:int}", route_page),
        Route("/routes/{index:int}/doctor", doctor, methods=["POST"]),
        Route("/test", tester),
        Route("/events", events),
        Route("/config", config_page),
        Route("/audit", audit_page),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]


def _sse(event: str, html: str) -> str:
    data = "\n".join(f"data: {line}" for line in html.splitlines() or [""])
    return f"event: {event}\n{data}\n\n"
