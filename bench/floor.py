"""The floor for a Python proxy on this machine, measured beside portico by ``make bench``.

uvloop + httptools and nothing else: each client connection gets its own
keep-alive upstream connection; the request head is parsed, ``/myapp`` is
stripped and the X-Forwarded-* headers are added; request bodies
(Content-Length only) and the whole response are relayed as they arrive,
unparsed. No routing table, no header
policy, no Location rewriting, no access log, no timeouts, no limits: what
portico does beyond this is what its features cost.

    python bench/floor.py PORT TLS_PORT ORIGIN_PORT CERT KEY [SPIN_US]

SPIN_US adds that much busy user time to every request (bench/budget.py): what
any proxy's features would cost, without their cache or allocation effects.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
import typing

import httptools
import uvloop

PREFIX = b"/myapp"
SPIN = float(sys.argv[6]) / 1e6 if len(sys.argv) > 6 else 0.0


class Upstream(asyncio.Protocol):
    def __init__(self, client: asyncio.Transport) -> None:
        self.client = client

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()


class Client(asyncio.Protocol):
    def __init__(self, origin: int, scheme: bytes) -> None:
        self.origin = origin
        self.scheme = scheme
        self.parser = httptools.HttpRequestParser(self)
        self.headers: list[bytes] = []
        self.url = b""
        self.upstream: asyncio.Transport | None = None
        self.waiting: list[bytes] = []  # written before the upstream connection is up

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's: no subclass
        self.peer = transport.get_extra_info("peername")[0].encode()
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(
            lambda: Upstream(self.transport), "127.0.0.1", self.origin)
        self.upstream = transport
        transport.writelines(self.waiting)
        self.waiting = []

    def send(self, data: bytes) -> None:
        if self.upstream is None:
            self.waiting.append(data)
        else:
            self.upstream.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.headers = []
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        if SPIN:
            until = time.perf_counter() + SPIN
            while time.perf_counter() < until:
                pass
        path = self.url[len(PREFIX):] if self.url.startswith(PREFIX) else self.url
        method = self.parser.get_method()
        self.send(b"".join([
            method, b" ", path or b"/", b" HTTP/1.1\r\n", *self.headers,
            b"X-Forwarded-For: ", self.peer, b"\r\nX-Forwarded-Proto: ", self.scheme,
            b"\r\nX-Forwarded-Prefix: /myapp\r\n\r\n",
        ]))

    def on_body(self, body: bytes) -> None:
        self.send(body)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.upstream is not None:
            self.upstream.close()


async def main(port: int, tls_port: int, origin: int, cert: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    await loop.create_server(lambda: Client(origin, b"http"), "127.0.0.1", port, backlog=4096)
    await loop.create_server(lambda: Client(origin, b"https"), "127.0.0.1", tls_port,
                             backlog=4096, ssl=context)
    await asyncio.Event().wait()


if __name__ == "__main__":
    port, tls_port, origin = (int(arg) for arg in sys.argv[1:4])
    uvloop.run(main(port, tls_port, origin, sys.argv[4], sys.argv[5]))
