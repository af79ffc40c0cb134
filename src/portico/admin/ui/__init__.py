"""The web UI's pages, mounted at ``/ui`` by the admin API (admin/api.py).

``ui_routes()`` is the mount point: the pages (Jinja2 templates, vendored static
assets under ``/ui/static/``) read and act only through ``AdminContext``
(``request.app.state.admin``) and the ``/api/`` endpoints. Every request here has
passed the guard (admin/guard.py): ``/ui/static/`` is public, pages need the ``read``
scope, writes ``operate``. No inline script: the CSP forbids it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route


async def index(request: Request) -> Response:
    return HTMLResponse("<!doctype html><title>portico</title>"
                        "<p>The admin UI is not built yet: see <a href=\"/api/status\">"
                        "/api/status</a>.</p>")


def ui_routes() -> list[BaseRoute]:
    return [Route("/", index, methods=["GET"])]
