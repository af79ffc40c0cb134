"""A scripted upstream in the test's event loop: real loopback sockets, no threads.

``await ScriptedUpstream(script).start()`` in the test's loop listens on an ephemeral
127.0.0.1 port; each accepted connection runs ``await script(conn)``.
``await conn.read_request()`` reads one request (head plus Content-Length or chunked
body) and records it as a ``Seen``, so a test can assert on exactly what reached the
upstream; ``conn.send``/``close``/``reset`` answer.
``requests_arrived(n)``/``accepted(n)`` are awaitables that replace "sleep until the
request is at the upstream".
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable

from tests.support.recorder import Seen

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class UpstreamConn:
    """One accepted connection, as the script sees it."""

    def __init__(self, upstream: ScriptedUpstream, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.upstream = upstream
        self.reader = reader
        self.writer = writer
        self.received = bytearray()  # every byte that arrived, requests or not
        self.closed_by_peer = asyncio.Event()  # portico closed its side

    async def _more(self) -> bytes:
        data = await self.reader.read(65536)
        if not data:
            self.closed_by_peer.set()
        self.received += data
        self.upstream._changed()
        return data

    async def read_some(self) -> bytes:
        """The next bytes to arrive, b"" once portico closed."""
        return await self._more()

    async def read_request(self) -> Seen | None:
        """One whole request, recorded; None if the connection ended first."""
        buffer = bytearray()
        while b"\r\n\r\n" not in buffer:
            if not await self._fill(buffer):
                return None
        head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        seen = Seen(head, b"", head + b"\r\n\r\n")
        body = await self._read_body(seen, bytearray(rest))
        if body is None:
            return None
        seen.body = body
        self.upstream.requests.append(seen)
        self.upstream._changed()
        return seen

    async def _fill(self, buffer: bytearray) -> bool:
        if self._unread:
            buffer += self._unread
            self._unread = b""
            return True
        data = await self._more()
        buffer += data
        return bool(data)

    _unread = b""

    async def _read_body(self, seen: Seen, buffer: bytearray) -> bytes | None:
        if (seen.header(b"transfer-encoding") or b"").lower() == b"chunked":
            body = bytearray()
            while True:
                while b"\r\n" not in buffer:
                    if not await self._fill(buffer):
                        return None
                line, _, rest = bytes(buffer).partition(b"\r\n")
                buffer[:] = rest
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while b"\r\n" not in buffer:  # trailers end with an empty line
                        if not await self._fill(buffer):
                            return None
                    self._unread = bytes(buffer).partition(b"\r\n")[2]
                    return bytes(body)
                while len(buffer) < size + 2:
                    if not await self._fill(buffer):
                        return None
                body += buffer[:size]
                del buffer[: size + 2]
        length = int(seen.header(b"content-length") or 0)
        while len(buffer) < length:
            if not await self._fill(buffer):
                return None
        self._unread = bytes(buffer[length:])
        return bytes(buffer[:length])

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def close(self) -> None:
        self.writer.close()

    def reset(self) -> None:
        """Close with a TCP RST (SO_LINGER 0)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


Script = Callable[[UpstreamConn], Awaitable[None]]


async def ok_script(conn: UpstreamConn) -> None:
    while await conn.read_request() is not None:
        conn.send(OK)


def answers(*responses: bytes, then_close: bool = False, rest: bytes | None = OK) -> Script:
    """Answer successive requests on a connection with fixed bytes; then close, or answer
    the rest with ``rest`` (None: read them and say nothing)."""
    async def script(conn: UpstreamConn) -> None:
        for response in responses:
            if await conn.read_request() is None:
                return
            conn.send(response)
        if then_close:
            conn.close()
            return
        while await conn.read_request() is not None:
            if rest is not None:
                conn.send(rest)
    return script


def per_connection(*scripts: Script) -> Script:
    """Connection N runs scripts[N] (the last one runs the rest)."""
    count = [0]

    async def script(conn: UpstreamConn) -> None:
        count[0] += 1
        await scripts[min(count[0], len(scripts)) - 1](conn)
    return script


class ScriptedUpstream:
    def __init__(self, script: Script = ok_script) -> None:
        self.script = script
        self.requests: list[Seen] = []
        self.connections: list[UpstreamConn] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self._change: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> ScriptedUpstream:
        self._change = asyncio.Event()
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _changed(self) -> None:
        if self._change is not None:
            self._change.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = UpstreamConn(self, reader, writer)
        self.connections.append(conn)
        self._changed()
        try:
            await self.script(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _until(self, condition: Callable[[], bool]) -> None:
        assert self._change is not None, "start() the upstream first"
        while not condition():
            self._change.clear()
            await self._change.wait()

    async def requests_arrived(self, count: int = 1) -> None:
        """Until ``count`` whole requests have arrived in all."""
        await self._until(lambda: len(self.requests) >= count)

    async def accepted(self, count: int = 1) -> None:
        """Until ``count`` connections have been accepted in all."""
        await self._until(lambda: len(self.connections) >= count)

    def reset_log(self, script: Script | None = None) -> None:
        self.requests.clear()
        self.connections.clear()
        if script is not None:
            self.script = script

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for conn in self.connections:
                conn.writer.transport.abort()
            await self.server.wait_closed()
