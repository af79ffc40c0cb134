"""docs/guide/static-and-redirects.md: its examples load, and a real portico answers
a redirect route."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portico.config.load import parse
from tests.support.client import send_raw
from tests.support.portico_proc import StartPortico

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "static-and-redirects.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", GUIDE.read_text("utf-8"), re.S)


@pytest.mark.parametrize("block", BLOCKS)
def test_the_example_loads(block: str) -> None:
    parse(block, str(GUIDE))


def test_the_guide_example_served_by_portico(start_portico: StartPortico) -> None:
    assert len(BLOCKS) == 1
    config = ('[server]\nlisten = ["http://127.0.0.1:0"]\n'
              + BLOCKS[0].replace("http://127.0.0.1:8000/", "http://127.0.0.1:9/"))
    portico = start_portico(config)
    reply = send_raw(portico.port, b"GET /old/a/b?x=1 HTTP/1.1\r\nHost: a\r\n"
                     b"Connection: close\r\n\r\n", quiet=0.3)
    assert reply.status == 301
    assert reply.header(b"location") == b"https://example.com/new/a/b?x=1"
    reply = send_raw(portico.port, b"GET /promo/x?y=2 HTTP/1.1\r\nHost: a\r\n"
                     b"Connection: close\r\n\r\n", quiet=0.3)
    assert reply.status == 302
    assert reply.header(b"location") == b"/landing?from=promo"
