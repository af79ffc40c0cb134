"""A real FastAPI app under real uvicorn behind a real portico, at /api
(docs/guide/fastapi.md): the docs page, the schema and a trailing-slash redirect all
land under /api exactly once, with portico's defaults and with explain's advice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.portico_proc import StartPortico

GUIDE = Path(__file__).parents[2] / "docs" / "guide" / "fastapi.md"


def guide_block(language: str) -> str:
    """The guide's one code block in ``language``."""
    blocks = GUIDE.read_text().split(f"```{language}\n")[1:]
    assert len(blocks) == 1, f"one {language} block expected in {GUIDE}"
    return blocks[0].split("```", 1)[0]


def explain(config: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "portico", "explain", "-c", str(config)], capture_output=True,
        text=True, timeout=30, env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def assert_served_once_under(client: httpx.Client, base: str, prefix: str) -> None:
    """/docs, /openapi.json and a trailing-slash redirect under ``prefix``, never doubled."""
    seen: list[str] = []
    docs = client.get(f"{base}{prefix}/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]
    assert f"url: '{prefix}/openapi.json'" in docs.text
    schema = client.get(f"{base}{prefix}/openapi.json")
    assert schema.status_code == 200 and schema.headers["content-type"] == "application/json"
    assert "/items/" in schema.json()["paths"]
    assert schema.json()["servers"] == [{"url": prefix}]
    redirect = client.get(f"{base}{prefix}/items")
    assert redirect.status_code == 307
    assert redirect.headers["location"] == f"{base}{prefix}/items/"
    item = client.get(redirect.headers["location"])
    assert item.json() == {"path": f"{prefix}/items/", "root_path": prefix}
    docs_slash = client.get(f"{base}{prefix}/docs/")
    assert docs_slash.status_code == 307
    assert docs_slash.headers["location"] == f"{base}{prefix}/docs"
    for response in (docs, schema, redirect, item, docs_slash):
        seen += [response.text, *response.headers.values()]
    assert not [text for text in seen if f"{prefix}{prefix}" in text]


def test_the_guide_app_under_api_with_the_defaults(tmp_path: Path, start_portico: StartPortico) -> None:
    (tmp_path / "main.py").write_text(guide_block("python"))
    config = guide_block("toml").replace('"http://127.0.0.1:8080"', '"http://127.0.0.1:0"')
    proxy = start_portico(config)
    with httpx.Client() as client:
        assert_served_once_under(client, proxy.url, "/api")
    said = explain(proxy.config_path)
    assert "--root-path /api main:app" in said  # the command line portico ran
    assert "set no root_path in the app" in said


def test_explains_advice_for_a_uvicorn_it_does_not_start(tmp_path: Path, start_portico: StartPortico) -> None:
    """A ``command`` app is run by the user's own uvicorn command line: explain says to add
    --root-path for the stripped route, and that command line, run, works."""
    (tmp_path / "main.py").write_text(guide_block("python"))
    argv = ["{python}", "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
            "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    config = tmp_path / "advice.toml"

    def write(extra: list[str]) -> str:
        text = f"""
[server]
listen = ["http://127.0.0.1:0"]

[[app]]
name = "v2"
command = {json.dumps([*argv, *extra, "main:app"])}
cwd = "."

[[route]]
path = "/v2"
app = "v2"
"""
        config.write_text(text)
        return text

    write([])
    said = explain(config)
    advice = "ASGI: start uvicorn with --root-path /v2"
    assert advice in said
    proxy = start_portico(write(["--root-path", "/v2"]))
    with httpx.Client() as client:
        assert_served_once_under(client, proxy.url, "/v2")
