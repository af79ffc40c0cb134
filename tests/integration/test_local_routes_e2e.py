"""docs/guide/static-and-redirects.md: its examples load, and a real portico answers
redirect and static routes, over raw sockets (traversal attempts included)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from portico.config.compile import serving_plan
from portico.config.load import parse
from tests.support.client import send_raw
from tests.support.portico_proc import StartPortico

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "static-and-redirects.md"
BLOCKS = re.findall(r"```toml\n(.*?)```", GUIDE.read_text("utf-8"), re.S)


def site(base: Path) -> None:
    (base / "public" / "assets").mkdir(parents=True, exist_ok=True)
    (base / "public" / "index.html").write_text("<h1>home</h1>")
    (base / "public" / "assets" / "app.js").write_text("let a = 1\n")
    (base / "secret.txt").write_text("secret")
    if not (base / "public" / "out.txt").is_symlink():
        os.symlink(base / "secret.txt", base / "public" / "out.txt")


@pytest.mark.parametrize("block", BLOCKS)
def test_the_example_compiles(block: str, tmp_path: Path) -> None:
    site(tmp_path)
    serving_plan(parse(block, str(GUIDE)), tmp_path, tmp_path)


def get(port: int, target: bytes, *fields: bytes) -> bytes:
    head = b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + b"".join(f + b"\r\n" for f in fields)
    return send_raw(port, head + b"Connection: close\r\n\r\n", quiet=0.3).data


def test_the_guide_examples_served_by_portico(start_portico: StartPortico,
                                              tmp_path: Path) -> None:
    assert len(BLOCKS) == 3
    site(tmp_path)
    redirects = BLOCKS[0].replace('[[route]]\npath = "/"\nupstream = "http://127.0.0.1:8000/"\n', "")
    config = '[server]\nlisten = ["http://127.0.0.1:0"]\n' + redirects + BLOCKS[1]
    (tmp_path / "portico0.toml").write_text("")  # the config's directory is tmp_path
    portico = start_portico(config)
    port = portico.port
    data = get(port, b"/old/a/b?x=1")
    assert data.startswith(b"HTTP/1.1 301 ") and b"\r\nLocation: https://example.com/new/a/b?x=1"\
        in data
    assert get(port, b"/promo/x?y=2").startswith(b"HTTP/1.1 302 ")
    home = get(port, b"/")
    assert home.startswith(b"HTTP/1.1 200 ") and home.endswith(b"<h1>home</h1>")
    js = get(port, b"/assets/app.js", b"Range: bytes=4-4")
    assert js.startswith(b"HTTP/1.1 206 Partial Content\r\n") and js.endswith(b"\r\n\r\na")
    etag = re.search(rb"\r\nETag: (\S+)", home)
    assert etag is not None
    assert get(port, b"/", b"If-None-Match: " + etag.group(1)).startswith(b"HTTP/1.1 304 ")
    for target in (b"/../secret.txt", b"/%2e%2e/secret.txt", b"/assets/..%2f..%2fsecret.txt",
                   b"/..%5csecret.txt", b"/out.txt", b"/assets/%2e%2e/%2e%2e/secret.txt",
                   b"/index.html%00", b"/./../secret.txt"):
        data = get(port, target)
        assert data[9:12] in (b"400", b"403", b"404"), (target, data[:40])
        assert b"secret" not in data, target


def test_compression_by_portico(start_portico: StartPortico, tmp_path: Path) -> None:
    """The guide's compression example, its upstreams one threaded file server."""
    import functools
    import threading
    import zlib
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    text = b"<p>compressed by portico</p>\n" * 200
    (tmp_path / "page.html").write_bytes(text)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        upstream = f"http://127.0.0.1:{server.server_address[1]}/"
        config = BLOCKS[2].replace("compress = true", 'compress = true\nlisten = '
                                   '["http://127.0.0.1:0"]', 1)
        config = re.sub(r"http://127\.0\.0\.1:800[01]/", upstream, config)
        portico = start_portico(config)
        data = get(portico.port, b"/page.html", b"Accept-Encoding: gzip")
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"\r\nContent-Encoding: gzip" in head and b"Vary: Accept-Encoding" in head
        assert b"\r\nTransfer-Encoding: chunked" in head
        assert zlib.decompress(dechunk(body), 31) == text
        plain = get(portico.port, b"/downloads/page.html", b"Accept-Encoding: gzip")
        assert b"Content-Encoding" not in plain and plain.endswith(text)
    finally:
        server.shutdown()
        server.server_close()


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while (size := int(data.partition(b"\r\n")[0], 16)) > 0:
        data = data.partition(b"\r\n")[2]
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)
