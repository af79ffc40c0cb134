"""``portico init``'s source scan: which app a file defines, without importing it."""

from __future__ import annotations

import pytest

from portico.config.load import parse
from portico.config.starter import FoundApp, scan, starter_text


@pytest.mark.parametrize(
    ("source", "kind", "target"),
    [
        ("from flask import Flask\napp = Flask(__name__)\n", "wsgi", "app:app"),
        ("import flask\nserver = flask.Flask(__name__)\n", "wsgi", "app:server"),
        ("from fastapi import FastAPI\napi: FastAPI = FastAPI(title='x')\n", "asgi", "app:api"),
        ("from starlette.applications import Starlette\napp = Starlette(routes=[])\n", "asgi",
         "app:app"),
        ("from django.core.wsgi import get_wsgi_application\n"
         "application = get_wsgi_application()\n", "wsgi", "app:application"),
        ("def application(environ, start_response):\n    return []\n", "wsgi",
         "app:application"),
        # the first at top level wins; an indented one is not a module attribute
        ("def make():\n    inner = Flask(__name__)\napp = FastAPI()\nother = Flask(__name__)\n",
         "asgi", "app:app"),
    ],
)
def test_scan_finds_the_app(source: str, kind: str, target: str) -> None:
    found = scan(source, "app", "app.py")
    assert found is not None and (found.kind, found.target) == (kind, target)


def test_scan_finds_nothing_in_a_plain_module() -> None:
    assert scan("import flask\nprint(flask.__version__)\n", "app", "app.py") is None


@pytest.mark.parametrize("prefix", ["/", "/myapp", "/a/b"])
@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_every_starter_is_a_valid_config(prefix: str, kind: str) -> None:
    text = starter_text(FoundApp(kind, "app:app", "app.py: app = X("), "demo", prefix, None,
                        "http://127.0.0.1:8080")
    config = parse(text, "portico.toml")
    assert config.route[0].path == prefix and config.app[0].name == "demo"
    assert (config.app[0].asgi is not None) == (kind == "asgi")
