"""The doctor's middleware in process: what it reports after ProxyFix, DispatcherMiddleware
and Starlette ran, that only the marked request is answered, and the fixes it suggests
(tests/integration/test_doctor.py does the same through real servers, as `long`)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import FastAPI
from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

from portico.doctor.explain import Context, fixes
from portico.doctor.hook import HEADER, DoctorASGI, DoctorWSGI

TOKEN = "s3cret"
FORWARDED = {"X-Forwarded-For": "10.0.0.7", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "my.site.com", "X-Forwarded-Port": "8443",
             "X-Forwarded-Prefix": "/myapp"}


def flask_app() -> Flask:
    app = Flask(__name__)
    app.add_url_rule("/", "hello", lambda: "hello")
    return app


def ask(wsgi: Any, path: str, **headers: str) -> Any:
    response = Client(DoctorWSGI(wsgi, TOKEN)).get(path, headers=headers)
    return json.loads(response.data) if response.mimetype == "application/json" else response


def test_wsgi_after_proxyfix() -> None:
    app = flask_app()
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1,  # type: ignore[method-assign]
                            x_prefix=1)
    seen = ask(app, "/", **FORWARDED, **{HEADER: TOKEN})
    assert seen["client"] == "10.0.0.7" and seen["scheme"] == "https"
    assert (seen["host"], seen["port"], seen["prefix"]) == ("my.site.com", "8443", "/myapp")
    assert seen["root_url"] == "https://my.site.com:8443/myapp/"
    assert seen["middleware"] == ["werkzeug ProxyFix"]
    assert seen["app_status"] == "200 OK"


def test_wsgi_without_proxyfix_sees_the_proxy() -> None:
    seen = ask(flask_app(), "/", **FORWARDED, **{HEADER: TOKEN})
    assert seen["client"] is None and seen["scheme"] == "http"  # werkzeug.test sets no REMOTE_ADDR
    assert seen["prefix"] == "" and seen["root_url"] == "http://localhost/"


def test_wsgi_after_dispatcher_middleware() -> None:
    mounted = DispatcherMiddleware(NotFound(), {"/myApp": flask_app()})
    seen = ask(mounted, "/myApp/", **{HEADER: TOKEN})
    assert seen["prefix"] == "/myApp" and seen["root_url"] == "http://localhost/myApp/"


def test_only_the_marked_request_is_answered() -> None:
    assert ask(flask_app(), "/").data == b"hello"
    assert ask(flask_app(), "/", **{HEADER: "guess"}).data == b"hello"


def test_asgi_fastapi_under_a_root_path() -> None:
    app = FastAPI()
    app.get("/")(lambda: {"hello": 1})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/", "raw_path": b"/api/",
             "root_path": "/api", "scheme": "https", "query_string": b"",
             "server": ("127.0.0.1", 9000), "client": ("10.0.0.7", 5000),
             "headers": [(b"host", b"my.site.com"), (HEADER.lower().encode(), TOKEN.encode())],
             "http_version": "1.1", "asgi": {"version": "3.0"}}
    asyncio.run(DoctorASGI(app, TOKEN)(scope, receive, send))
    seen = json.loads(sent[-1]["body"])
    assert seen["client"] == "10.0.0.7" and seen["prefix"] == "/api"
    assert seen["root_url"] == "https://my.site.com/api/" and seen["app_status"] == "200"


def test_fixes_name_the_setting() -> None:
    asgi = Context(kind="asgi", server="uvicorn", preserve_path=False, preserve_host=False,
                   prefix="/api")
    assert any("preserve_host = true" in line for line in fixes("host", "127.0.0.1",
                                                                "my.site.com", asgi))
    wsgi = Context(kind="wsgi", server="gunicorn", preserve_path=True, preserve_host=False,
                   prefix="/x", middleware=["werkzeug ProxyFix"])
    said = fixes("prefix", "", "/x", wsgi)
    assert any("DispatcherMiddleware" in line for line in said)
    assert any("drop `preserve_path`" in line for line in said)
    assert "twice" in fixes("prefix", "/x/x", "/x", wsgi)[0]
