"""The admin server: an ASGI app served by the main process over portico's own HTTP parser.

Why not uvicorn: the main process already runs an event loop and owns the signals
(``uvicorn.Server`` installs its own SIGINT/SIGTERM handlers); the request head is read
by the same strict ``RequestParser`` (llhttp, size limits) as proxied traffic
(design-review §2e.1); and the ASGI app (Starlette, Jinja2) is imported on the first
admin request, not at start, so an idle portico keeps its ~30 MiB (docs/performance.md).

One request per connection (``Connection: close``): the admin's traffic is small and
this keeps the server simple. Every connection is bounded: the head by the parser's
limits, the body by ``max_body_size`` (413), the time to read the request and to start
the answer by ``request_timeout`` (408/504), the number open at once by ``MAX_OPEN``.
A response without Content-Length (server-sent events) is sent chunked; the app sees
``http.disconnect`` when the client goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from portico.http.events import Data, EndOfMessage, Rejected, Request
from portico.http.parser import RequestParser
from portico.http.writer import LAST_CHUNK, chunk, head, status_line

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_OPEN = 64  # admin connections at once; more are answered 503
READ_SIZE = 65536
EXTENSION = "portico.admin"  # scope["extensions"][EXTENSION]: how the request arrived


@dataclass(frozen=True)
class Bounds:
    max_body_size: int = 1 << 20
    request_timeout: float = 30.0


@dataclass(frozen=True)
class Transport:
    """How requests reach this server: ``unix`` (the 0600 control socket: its owner
    only) or ``tcp`` (a loopback or configured listener: Host, origin and auth checked)."""

    kind: str  # "unix" or "tcp"
    scheme: str = "http"
    port: int = 0  # the TCP listener's own port (the Host allowlist's)


class AdminServer:
    """Serves ``load_app()`` (called once, on the first request) to each connection."""

    def __init__(
        self, load_app: Callable[[], ASGIApp], bounds: Bounds,
        status: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self._load_app = load_app
        # ``GET /status`` on the control socket (``portico status``, monitoring scripts)
        # is answered here, without the ASGI app: polling it never grows the process.
        self._status = status
        self._app: ASGIApp | None = None
        self.bounds = bounds
        self._open = 0

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            self._app = self._load_app()
        return self._app

    def handler(
        self, transport: Transport
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._open += 1
            try:
                if self._open > MAX_OPEN:
                    await _plain(writer, 503, "too many admin connections; try again")
                    return
                await self._serve(reader, writer, transport)
            except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
                pass
            finally:
                self._open -= 1
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()

        return handle

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: Transport
    ) -> None:
        try:
            async with asyncio.timeout(self.bounds.request_timeout):
                request, body = await self._read(reader)
        except TimeoutError:
            await _plain(writer, 408, "the request took too long to arrive")
            return
        except _Refused as refused:
            await _plain(writer, refused.status, refused.reason)
            return
        if (self._status is not None and transport.kind == "unix" and request.method == b"GET"
                and request.target == b"/status"):
            await _json(writer, 200, await self._status())
            return
        scope = _scope(request, transport, writer)
        disconnected = asyncio.Event()
        watcher = asyncio.ensure_future(_until_eof(reader, disconnected))
        sender = _Sender(writer, request.method == b"HEAD")
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        try:
            app = self.app
            task = asyncio.ensure_future(app(scope, receive, sender.send))
            try:
                started = asyncio.ensure_future(sender.started.wait())
                try:
                    async with asyncio.timeout(self.bounds.request_timeout):
                        await asyncio.wait({task, started},
                                           return_when=asyncio.FIRST_COMPLETED)
                finally:
                    started.cancel()
                await task  # answering: a stream (server-sent events) may last
            except TimeoutError:
                task.cancel()
                if not sender.started.is_set():
                    await _plain(writer, 504, "the admin request took too long to answer")
                return
            finally:
                if not task.done():
                    task.cancel()
            if not sender.started.is_set():
                await _plain(writer, 500, "the admin app sent no response")
            else:
                await sender.finish()
        except Exception as exc:  # the admin must survive its own bugs
            if not sender.started.is_set():
                await _plain(writer, 500, f"admin error: {type(exc).__name__}")
        finally:
            watcher.cancel()

    async def _read(self, reader: asyncio.StreamReader) -> tuple[Request, bytes]:
        parser = RequestParser()
        request: Request | None = None
        body: list[bytes] = []
        size = 0
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise _Refused(400, "the connection closed before the request ended")
            for event in parser.feed(data):
                if isinstance(event, Rejected):
                    raise _Refused(event.status, event.reason)
                if isinstance(event, Request):
                    request = event
                    if event.content_length > self.bounds.max_body_size:
                        raise _Refused(413, f"the body is larger than the admin's "
                                            f"max_body_size ({self.bounds.max_body_size} bytes)")
                elif isinstance(event, Data):
                    size += len(event.data)
                    if size > self.bounds.max_body_size:
                        raise _Refused(413, f"the body is larger than the admin's "
                                            f"max_body_size ({self.bounds.max_body_size} bytes)")
                    body.append(event.data)
                elif isinstance(event, EndOfMessage) and request is not None:
                    return request, b"".join(body)


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Sender:
    """ASGI ``send``: the head at ``http.response.start``, then the body, framed by its
    Content-Length if the app gave one, else chunked."""

    def __init__(self, writer: asyncio.StreamWriter, head_only: bool) -> None:
        self.writer = writer
        self.head_only = head_only
        self.started = asyncio.Event()
        self.chunked = False
        self.done = False

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            headers = [(bytes(n), bytes(v)) for n, v in message.get("headers", [])]
            names = {name.lower() for name, _ in headers}
            self.chunked = b"content-length" not in names and not self.head_only
            if self.chunked:
                headers.append((b"transfer-encoding", b"chunked"))
            headers.append((b"connection", b"close"))
            self.writer.write(head(status_line(status, _phrase(status)), headers))
            self.started.set()
        elif kind == "http.response.body" and not self.done:
            data = bytes(message.get("body", b""))
            if data and not self.head_only:
                self.writer.write(b"".join(chunk(data)) if self.chunked else data)
            if not message.get("more_body", False):
                await self.finish()
            else:
                await self.writer.drain()

    async def finish(self) -> None:
        if self.done:
            return
        self.done = True
        if self.chunked:
            self.writer.write(LAST_CHUNK)
        await self.writer.drain()


async def _until_eof(reader: asyncio.StreamReader, disconnected: asyncio.Event) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(READ_SIZE):
            pass
    disconnected.set()


def _scope(request: Request, transport: Transport, writer: asyncio.StreamWriter) -> Scope:
    path, _, query = request.target.partition(b"?")
    peer = writer.get_extra_info("peername")
    sock = writer.get_extra_info("sockname")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.version.decode(),
        "method": request.method.decode(),
        "scheme": transport.scheme,
        "path": unquote_to_bytes(path).decode("utf-8", "replace"),
        "raw_path": path,
        "query_string": query,
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.headers],
        "client": tuple(peer[:2]) if isinstance(peer, tuple) else None,
        "server": tuple(sock[:2]) if isinstance(sock, tuple) else None,
        "extensions": {EXTENSION: {"transport": transport.kind, "port": transport.port}},
    }


async def _plain(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    """An answer the app never saw: a refused or broken request, in JSON."""
    await _json(writer, status, {"error": reason})


async def _json(writer: asyncio.StreamWriter, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content, indent=2).encode() + b"\n"
    writer.write(head(status_line(status, _phrase(status)), [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        (b"x-content-type-options", b"nosniff"), (b"connection", b"close"),
    ]) + body)
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.drain()


def _phrase(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"
