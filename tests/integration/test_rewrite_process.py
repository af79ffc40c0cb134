"""Rewrite rules through a real ``portico run`` over sockets, one process for the module:
each action once (the in-process suite, tests/inprocess/test_rewrite.py, has the detail)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.client import connect, read_response, read_until_quiet
from tests.support.portico_proc import Portico
from tests.support.recorder import Recorder


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Portico, Recorder]]:
    recorder = Recorder()
    origin = recorder.url.rstrip("/")
    config = f"""
[server]
listen = ["http://127.0.0.1:0"]

[[route]]
path = "/myapp"
upstream = "{recorder.url}"

[[rewrite.rule]]
name = "iis-guide"
pattern = "^myApp(.*)"
url = "{origin}/myApp{{R:1}}"
stop = true
request_headers = {{ HTTP_X_ORIGINAL_HOST = "{{HTTP_HOST}}" }}
conditions = [{{ input = "{{HTTP_X_MODE}}", pattern = "^proxy$" }}]

[[rewrite.rule]]
dialect = "apache"
name = "moved"
pattern = "^/old/(.*)$"
action = "redirect"
url = "/myapp/$1"

[[rewrite.rule]]
name = "gone"
pattern = "^gone"
action = "respond"
status = 410
body = "gone"

[[rewrite.rule]]
name = "drop"
pattern = "^drop"
action = "abort"

[[rewrite.rule]]
name = "local"
pattern = "^(a|b)/(.*)"
url = "/myapp/{{R:1}}-{{R:2}}"
"""
    proc = Portico(config, tmp_path_factory.mktemp("rewrite"))
    try:
        yield proc, recorder
    finally:
        proc.stop()
        recorder.close()


def ask(proc: Portico, request: bytes) -> bytes:
    with connect(proc.port) as sock:
        sock.sendall(request)
        return read_response(sock).data


def test_each_action_over_sockets(served: tuple[Portico, Recorder]) -> None:
    proc, recorder = served
    reply = ask(proc, b"GET /myApp/x?q=1 HTTP/1.1\r\nHost: site.example\r\nX-Mode: proxy\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    seen = recorder.requests[-1]
    assert seen.target == b"/myApp/x?q=1" and seen.header(b"x-original-host") == b"site.example"
    assert ask(proc, b"GET /old/p?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").startswith(
        b"HTTP/1.1 302 ")
    gone = ask(proc, b"GET /gone HTTP/1.1\r\nHost: a\r\n\r\n")
    assert gone.startswith(b"HTTP/1.1 410") and gone.endswith(b"\r\n\r\ngone")
    assert ask(proc, b"GET /a/x%2Fy HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 200")
    assert recorder.requests[-1].target == b"/a-x%2Fy"
    with connect(proc.port) as sock:
        sock.sendall(b"GET /drop HTTP/1.1\r\nHost: a\r\n\r\n")
        dropped = read_until_quiet(sock, quiet=5)
    assert dropped.data == b"" and dropped.closed
    assert "Traceback" not in proc.log_text()
