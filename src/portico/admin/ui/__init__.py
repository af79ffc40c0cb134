"""The web UI: server-rendered pages (Starlette + Jinja2) with vendored htmx, its SSE
extension and uPlot; no build step, no CDN, no inline script or style (strict CSP)."""
