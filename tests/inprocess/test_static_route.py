"""``static`` routes: files served by the worker (policy/static_files.py, proxy/static.py):
validators and 304, Range, precompressed siblings, no way out of the root, flow control."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico.config.load import parse
from portico.errors import ConfigError
from portico.policy.static_files import REFUSED, Found, byte_range, locate
from tests.support.harness import ProxyHarness

CONFIG = """
[[route]]
path = "/files"
static = "site"

[[route]]
path = "/"
static = "site"
static_index = ["index.htm", "index.html"]
"""
BIG = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("static")
    root = base / "site"
    (root / "docs").mkdir(parents=True)
    (root / "index.html").write_text("<h1>home</h1>")
    (root / "docs" / "index.html").write_text("<h1>docs</h1>")
    (root / "app.js").write_text("console.log(1)\n" * 100)
    (root / "app.js.gz").write_bytes(gzip.compress(b"console.log(1)\n" * 100, mtime=0))
    (root / "app.js.br").write_bytes(b"brotli bytes")
    (root / "big.bin").write_bytes(BIG)
    (base / "secret.txt").write_text("secret")
    os.symlink(base / "secret.txt", root / "escape.txt")
    os.symlink(root / "index.html", root / "alias.html")  # a link inside the root is fine
    return base


@pytest.fixture(scope="module")
def harness(site: Path) -> Iterator[ProxyHarness]:
    h = ProxyHarness(CONFIG, base=site)
    yield h
    h.close()


def get(harness: ProxyHarness, target: str, *fields: str, method: str = "GET") -> bytes:
    extra = "".join(f"{field}\r\n" for field in fields)
    return harness.exchange(f"{method} {target} HTTP/1.1\r\nHost: a\r\n{extra}\r\n".encode()
                            ).data


def field(data: bytes, name: bytes) -> bytes | None:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.lower() == name:
            return value.strip()
    return None


def status(data: bytes) -> int:
    return int(data.split(b" ", 2)[1])


def body(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[1]


def test_files_index_and_types(harness: ProxyHarness) -> None:
    home = get(harness, "/")
    assert status(home) == 200 and body(home) == b"<h1>home</h1>"
    assert field(home, b"content-type") == b"text/html; charset=utf-8"
    assert field(home, b"content-length") == b"13" and field(home, b"etag")
    assert (field(home, b"last-modified") or b"").endswith(b"GMT")
    assert body(get(harness, "/files/docs/")) == b"<h1>docs</h1>"
    moved = get(harness, "/files/docs?x=1")
    assert status(moved) == 301 and field(moved, b"location") == b"/files/docs/?x=1"
    assert status(get(harness, "/files/nothing")) == 404
    assert body(get(harness, "/alias.html")) == b"<h1>home</h1>"
    head = get(harness, "/app.js", method="HEAD")
    assert status(head) == 200 and body(head) == b"" and field(head, b"content-length") == b"1500"
    assert field(head, b"content-type") in (b"text/javascript; charset=utf-8",
                                            b"application/javascript")


def test_other_methods_are_405_with_allow(harness: ProxyHarness) -> None:
    data = get(harness, "/index.html", "Content-Length: 0", method="POST")
    assert status(data) == 405 and field(data, b"allow") == b"GET, HEAD"


def test_conditional_get(harness: ProxyHarness) -> None:
    first = get(harness, "/index.html")
    etag, modified = field(first, b"etag"), field(first, b"last-modified")
    assert etag and modified
    same = get(harness, "/index.html", f"If-None-Match: W/{etag.decode()}, \"other\"")
    assert status(same) == 304 and body(same) == b"" and field(same, b"etag") == etag
    assert field(same, b"content-length") is None
    assert status(get(harness, "/index.html", f"If-Modified-Since: {modified.decode()}")) == 304
    assert status(get(harness, "/index.html", "If-None-Match: \"other\"",
                      f"If-Modified-Since: {modified.decode()}")) == 200  # the tag wins
    assert status(get(harness, "/index.html", "If-None-Match: *", method="HEAD")) == 304


@pytest.mark.parametrize(("range_field", "expected", "content_range"), [
    ("bytes=0-9", 206, b"bytes 0-9/1048576"),
    ("bytes=1048570-", 206, b"bytes 1048570-1048575/1048576"),
    ("bytes=-6", 206, b"bytes 1048570-1048575/1048576"),
    ("bytes=100-99999999", 206, b"bytes 100-1048575/1048576"),
    ("bytes=0-1,5-6", 200, None),  # several ranges: the whole file
    ("items=0-1", 200, None),
    ("bytes=2000000-", 416, b"bytes */1048576"),
])
def test_ranges(harness: ProxyHarness, range_field: str, expected: int,
                content_range: bytes | None) -> None:
    data = get(harness, "/big.bin", f"Range: {range_field}")
    assert status(data) == expected
    assert field(data, b"content-range") == content_range
    if expected == 206:
        assert content_range is not None
        first, last = (int(n) for n in content_range.split(b" ")[1].split(b"/")[0].split(b"-"))
        assert body(data) == BIG[first:last + 1]
    elif expected == 200:
        assert body(data) == BIG


def test_if_range_with_a_stale_tag_sends_everything(harness: ProxyHarness) -> None:
    data = get(harness, "/big.bin", "Range: bytes=0-9", 'If-Range: "stale"')
    assert status(data) == 200 and len(body(data)) == len(BIG)


@pytest.mark.parametrize(("accept", "encoding", "content"), [
    ("gzip, br", b"br", b"brotli bytes"),
    ("gzip", b"gzip", gzip.compress(b"console.log(1)\n" * 100, mtime=0)),
    ("br;q=0, gzip;q=0.5", b"gzip", None),
    ("", None, b"console.log(1)\n" * 100),
    ("identity", None, None),
])
def test_precompressed_siblings(harness: ProxyHarness, accept: str, encoding: bytes | None,
                                content: bytes | None) -> None:
    data = get(harness, "/app.js", *([f"Accept-Encoding: {accept}"] if accept else []))
    assert status(data) == 200
    assert field(data, b"content-encoding") == encoding
    assert field(data, b"vary") == b"Accept-Encoding"
    if content is not None and encoding != b"gzip":
        assert body(data) == content
    if encoding == b"gzip":
        assert gzip.decompress(body(data)) == b"console.log(1)\n" * 100


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/files/../../secret.txt", "/%2e%2e/secret.txt", "/docs/%2e%2e/%2e%2e/x",
    "/..%2fsecret.txt", "/..%5csecret.txt", "/escape.txt", "/index.html%00.txt",
])
def test_no_way_out_of_the_root(harness: ProxyHarness, target: str) -> None:
    data = get(harness, target)
    assert status(data) in (400, 403, 404)
    assert b"secret" not in data


def test_a_big_file_waits_for_a_slow_client(harness: ProxyHarness) -> None:
    client = harness.client()
    client.pause_writing()
    client.send(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /index.html HTTP/1.1\r\nHost: a\r\n\r\n")
    harness.turn()
    held = client.received
    assert len(held) < 2 * 65536  # one part, then nothing while the socket is full
    client.resume_writing()
    harness.settle(client)
    data = client.received
    assert data.count(b"HTTP/1.1 200") == 2  # the pipelined request waited its turn
    assert data.split(b"\r\n\r\n", 1)[1].startswith(BIG) and data.endswith(b"<h1>home</h1>")
    client.disconnect()


def test_locate_and_ranges_units() -> None:
    assert locate("/r", b"/a/b%20c") == "/r/a/b c"
    assert locate("/r", b"/a/./b") == "/r/a/b"
    for refused in (b"/a/%2E%2E/b", b"/..", b"/a%2Fb", b"/a%5cb", b"/a%00", b"/a\\b"):
        assert locate("/r", refused) == REFUSED, refused
    found = Found("/r/x", 10, 0.0, b'"t"', b"", b"", False)
    assert byte_range(found, b"bytes=5-1", b"") is None
    assert byte_range(found, b"bytes=-0", b"") is False
    assert byte_range(found, b"bytes=0-0", b'"t"') == (0, 0)


@pytest.mark.parametrize(("keys", "message"), [
    ('static = "nowhere"', "no such directory"),
    ('static = "."\nupstream = "http://127.0.0.1:1/"', "with 'static' answers itself"),
    ('static = "."\nredirect = "/x"', "either 'redirect' or 'static'"),
    ('static = "."\nstatic_index = ["../x"]', "invalid static_index"),
])
def test_config_errors(keys: str, message: str, tmp_path: Path) -> None:
    from portico.config.compile import serving_plan

    with pytest.raises(ConfigError, match=message):
        serving_plan(parse(f'[[route]]\npath = "/"\n{keys}\n', "p.toml"), tmp_path, tmp_path)
