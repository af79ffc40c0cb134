"""Which ASGI apps portico starts with uvicorn --root-path, and what explain and init say.

The served behaviour is tested on a real FastAPI app in tests/integration/test_fastapi.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portico.advice import explain
from portico.config.compile import run_plan
from portico.config.load import parse
from portico.config.schema import Config
from portico.config.starter import asgi_prefix_lines
from portico.server.reload import fixed_fields_changed
from portico.supervisor.commands import app_argv

APP = '[[app]]\nname = "api"\nasgi = "main:app"\nbind = "127.0.0.1:9001"\n'


def route(path: str, extra: str = "") -> str:
    return f'[[route]]\npath = "{path}"\napp = "api"\n{extra}\n'


def config(*routes: str) -> Config:
    return parse(APP + "".join(routes), "test.toml")


def argv_and_advice(cfg: Config) -> tuple[list[str], str]:
    plan = run_plan(cfg, Path.cwd(), Path.cwd(), None, print)
    said = "\n".join(line for advice in explain(cfg) for line in advice.lines)
    return app_argv(plan.apps[0]), said


def test_one_stripped_prefix_is_the_root_path() -> None:
    argv, said = argv_and_advice(config(route("/api/")))  # the trailing slash is dropped
    assert argv[-3:] == ["--root-path", "/api", "main:app"]
    assert "ASGI: portico starts uvicorn with --root-path /api" in said
    same, _ = argv_and_advice(config(route("/api"), route("/api", 'host = "other.example"')))
    assert "--root-path" in same  # two hosts, one prefix


@pytest.mark.parametrize(("routes", "says"), [
    ([route("/api", "preserve_path = true")],
     "ASGI: outer = Starlette(routes=[Mount('/api', app=app)]), served without --root-path"),
    ([route("/api"), route("/v2")], "api is routed under more than one prefix"),
    ([route("/api"), route("/v2", "preserve_path = true")], "more than one prefix"),
    ([route("/")], ""),
    ([], ""),
])
def test_no_root_path_where_one_prefix_cannot_be_it(routes: list[str], says: str) -> None:
    argv, said = argv_and_advice(config(*routes))
    assert "--root-path" not in argv
    assert says in said


def test_a_route_that_moves_an_asgi_app_restarts_that_app_at_reload() -> None:
    """Not refused: the app's plan changed (its --root-path), so a reload restarts it
    (server/reload.py) and nothing else."""
    before = run_plan(config(route("/api")), Path.cwd(), Path.cwd(), None, print)
    after = run_plan(config(route("/v2")), Path.cwd(), Path.cwd(), None, print)
    assert fixed_fields_changed(before, after) == ""
    assert (before.apps[0].root_path, after.apps[0].root_path) == ("/api", "/v2")
    headers = run_plan(config(route("/api", 'request_headers.set = { X-A = "1" }')),
                       Path.cwd(), Path.cwd(), None, print)
    assert fixed_fields_changed(before, headers) == ""
    assert headers.apps == before.apps


def test_init_lines_give_the_same_root_path() -> None:
    lines = asgi_prefix_lines("/api/")
    assert all(line.startswith("#") for line in lines[:-1])
    assert "--root-path /api" in lines[0]
    argv, _ = argv_and_advice(config(route("/api", "\n".join(lines))))
    assert argv[-3:] == ["--root-path", "/api", "main:app"]
    assert asgi_prefix_lines("/") == []
