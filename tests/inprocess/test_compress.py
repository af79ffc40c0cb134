"""``compress``: proxied responses gzip- (or brotli-) encoded, streamed, with the usual
rules (proxy/compress.py)."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator

import pytest

from portico.proxy import compress
from tests.support.harness import ProxyHarness
from tests.support.scripted import UpstreamConn

TEXT = b"<p>hello portico</p>\n" * 100
RESPONSES = {
    b"/text": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"v1\"\r\nVary: Cookie\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(TEXT), TEXT),
    b"/small": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    b"/png": b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n%s"
             % (len(TEXT), TEXT),
    b"/encoded": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(TEXT), TEXT),
    b"/no-transform": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Cache-Control: public, no-transform\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(TEXT), TEXT),
    b"/partial": b"HTTP/1.1 206 Partial Content\r\nContent-Type: text/plain\r\n"
                 b"Content-Range: bytes 0-2099/9999\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(TEXT), TEXT),
    b"/chunked": b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                 % (len(TEXT), TEXT, len(TEXT), TEXT),
}


async def by_path(conn: UpstreamConn) -> None:
    while (seen := await conn.read_request()) is not None:
        conn.send(RESPONSES[seen.target.split(b"?")[0]])


CONFIG = """
[server]
compress = true

[[route]]
path = "/off"
upstream = "{url}"
compress = false

[[route]]
path = "/"
upstream = "{url}"
"""


@pytest.fixture(scope="module")
def harness() -> Iterator[ProxyHarness]:
    h, _ = ProxyHarness.with_upstream(lambda url: CONFIG.format(url=url), by_path)
    yield h
    h.close()


def get(harness: ProxyHarness, target: str, accept: str | None = "gzip",
        method: str = "GET", version: str = "1.1") -> tuple[dict[bytes, bytes], bytes]:
    extra = f"Accept-Encoding: {accept}\r\n" if accept is not None else ""
    data = harness.exchange(f"{method} {target} HTTP/{version}\r\nHost: a\r\n{extra}"
                            "Connection: close\r\n\r\n".encode()).data
    head, _, body = data.partition(b"\r\n\r\n")
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.lower()] = value.strip()
    fields[b":status"] = head.split(b" ")[1]
    if fields.get(b"transfer-encoding") == b"chunked":
        body = dechunk(body)
    return fields, body


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        out += data[:size]
        data = data[size + 2:]


def test_gzip_streamed_with_weak_etag_and_vary(harness: ProxyHarness) -> None:
    fields, body = get(harness, "/text")
    assert fields[b":status"] == b"200"
    assert fields[b"content-encoding"] == b"gzip"
    assert fields[b"transfer-encoding"] == b"chunked" and b"content-length" not in fields
    assert fields[b"etag"] == b'W/"v1"'
    assert fields[b"vary"] == b"Cookie, Accept-Encoding"
    assert zlib.decompress(body, 31) == TEXT and len(body) < len(TEXT) // 4


def test_a_chunked_upstream_and_an_http10_client(harness: ProxyHarness) -> None:
    fields, body = get(harness, "/chunked", "deflate, gzip;q=0.5")
    assert fields[b"content-encoding"] == b"gzip"
    assert zlib.decompress(body, 31) == TEXT * 2
    fields, body = get(harness, "/text", version="1.0")  # close-delimited
    assert fields[b"content-encoding"] == b"gzip" and b"transfer-encoding" not in fields
    assert zlib.decompress(body, 31) == TEXT


@pytest.mark.skipif(compress.BROTLI is None, reason="the brotli package is not installed")
def test_brotli_first_when_installed(harness: ProxyHarness) -> None:
    fields, body = get(harness, "/text", "gzip, br")
    assert fields[b"content-encoding"] == b"br"
    assert compress.BROTLI.decompress(body) == TEXT


@pytest.mark.parametrize(("target", "accept", "method"), [
    ("/text", None, "GET"),  # the client takes no coding
    ("/text", "gzip;q=0", "GET"),
    ("/text", "identity", "GET"),
    ("/text", "gzip", "HEAD"),
    ("/small", "gzip", "GET"),  # under the minimum size
    ("/png", "gzip", "GET"),  # not a compressible type
    ("/encoded", "gzip", "GET"),  # the upstream encoded it already
    ("/no-transform", "gzip", "GET"),
    ("/partial", "gzip", "GET"),  # 206
    ("/off/text", "gzip", "GET"),  # the route turns it off
])
def test_left_as_it_is(harness: ProxyHarness, target: str, accept: str | None,
                       method: str) -> None:
    fields, body = get(harness, target, accept, method)
    assert fields.get(b"content-encoding") in (None, b"gzip" if target == "/encoded" else None)
    assert b"content-length" in fields
    if method == "GET" and target not in ("/small",):
        assert body == TEXT
    assert fields.get(b"etag") in (None, b'"v1"')


def test_off_by_default_nothing_wraps() -> None:
    h = ProxyHarness('[[route]]\npath = "/"\nupstream = "http://127.0.0.1:9/"\n')
    try:
        assert all(policy.compress is None for policy in h.gateway.policies.routes)
    finally:
        h.close()


def test_each_upstream_batch_reaches_the_client_at_once() -> None:
    """Streaming: an event stream's first event is readable before the upstream ends."""
    go_on = asyncio.Event()

    async def events(conn: UpstreamConn) -> None:
        await conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n10\r\ndata: first\n\n   \r\n")
        await go_on.wait()
        conn.send(b"e\r\ndata: second\n\n\r\n0\r\n\r\n")

    h, _ = ProxyHarness.with_upstream(lambda url: CONFIG.format(url=url), events)
    try:
        client = h.client()
        client.send(b"GET /stream HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
        h.settle(client)
        decoder = zlib.decompressobj(31)
        body = client.received.partition(b"\r\n\r\n")[2]
        assert decoder.decompress(dechunk(body + b"0\r\n\r\n")) == b"data: first\n\n   "
        go_on.set()
        h.settle(client)
        rest = client.received.partition(b"\r\n\r\n")[2]
        assert zlib.decompress(dechunk(rest), 31) == b"data: first\n\n   data: second\n\n"
        client.disconnect()
    finally:
        h.close()
