"""The web UI's pages, mounted at ``/ui`` by the admin API (admin/api.py).

Server-rendered (Starlette + Jinja2) with htmx, its SSE extension and uPlot vendored
under ``static/vendor/`` (no build step, no CDN). Every request here has passed the
admin guard (admin/guard.py): ``/ui/static/`` is public, pages need the ``read`` scope.
Pages only read, through ``AdminContext``; every action is a call from the browser to
the ``/api/`` endpoint the CLI uses, with that endpoint's scope. No inline script or
style: the CSP forbids both.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import BaseRoute


def ui_routes() -> list[BaseRoute]:
    from portico.admin.ui.app import page_routes
    from portico.admin.ui.source import AdminSource

    def source_of(request: Request) -> AdminSource:
        return AdminSource(request.app.state.admin)

    return page_routes(source_of)
