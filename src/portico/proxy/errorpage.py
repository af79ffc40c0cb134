"""Small error replies that say which layer failed. Never a traceback."""

from __future__ import annotations

import html
import json

from portico.errors import Layer, ProxyError
from portico.http import writer
from portico.http.events import Headers, Request


def wants_json(accept: bytes) -> bool:
    return b"application/json" in accept and b"text/html" not in accept


def error_reply(
    error: ProxyError, request_id: bytes, request: Request, keep: bool
) -> tuple[bytes, int]:
    """What to write for ``error`` in answer to ``request``, and how many of those bytes
    are body (the access log's count): a HEAD gets the head alone."""
    head, body = error_page(error.status, error.layer, str(error), request_id,
                            as_json=wants_json(request.get(b"accept")), close=not keep,
                            retry_after=error.retry_after)
    if request.method == b"HEAD":
        return head, 0
    return head + body, len(body)


def error_page(
    status: int,
    layer: Layer,
    detail: str,
    request_id: bytes,
    *,
    as_json: bool = False,
    close: bool = True,
    retry_after: int = 0,
) -> tuple[bytes, bytes]:
    """An error reply's head and body, apart: the access log counts the body's bytes."""
    headers, body = error_fields(status, layer, detail, request_id, as_json=as_json,
                                 retry_after=retry_after)
    if close:
        headers.append((b"Connection", b"close"))
    return writer.head(writer.status_line(status, b""), headers), body


def error_fields(
    status: int, layer: Layer, detail: str, request_id: bytes, *, as_json: bool = False,
    retry_after: int = 0,
) -> tuple[Headers, bytes]:
    """An error reply's fields and body, in no wire form (HTTP/2 sends them as frames)."""
    reason = writer.reason_phrase(status).decode("ascii")
    rid = request_id.decode("latin-1")
    if as_json:
        body = json.dumps(
            {"status": status, "error": reason, "layer": layer.value, "detail": detail,
             "request_id": rid}
        ).encode()
        content_type = b"application/json"
    else:
        body = (
            f"<!doctype html>\n<html><head><title>{status} {reason}</title></head>\n"
            f"<body><h1>{status} {reason}</h1>\n<p>{html.escape(detail)}</p>\n"
            f"<p>Failed at: <b>{layer.value}</b>. Request id: <code>{html.escape(rid)}</code></p>\n"
            f"<hr><address>portico</address></body></html>\n"
        ).encode()
        content_type = b"text/html; charset=utf-8"
    headers = [
        (b"Content-Type", content_type),
        (b"Content-Length", b"%d" % len(body)),
        (b"X-Request-ID", request_id),
        (b"X-Portico-Error", layer.name.lower().encode()),
        (b"Cache-Control", b"no-store"),
    ]
    if retry_after:
        headers.append((b"Retry-After", b"%d" % retry_after))
    return headers, body
