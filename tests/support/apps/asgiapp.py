"""A bare ASGI app: answers with what it saw, as JSON."""

from __future__ import annotations

import json
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    body = json.dumps({
        "client": scope["client"][0] if scope.get("client") else None,
        "scheme": scope["scheme"],
        "path": scope["path"],
        "root_path": scope["root_path"],
        "host": headers.get("host"),
        "prefix": headers.get("x-forwarded-prefix"),
    }).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
