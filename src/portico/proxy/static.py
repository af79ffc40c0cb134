"""The request_filter of a ``static`` route: files from a directory, answered by the
worker itself (the decisions are policy/static_files.py's).

The body is a ``FileBody`` the client protocol pumps (``Downstream.send_body_from``):
64 KiB reads, a burst per loop turn, none while the client's socket is full, so a big
file neither blocks the loop nor fills memory. Reads are plain ``read`` calls, as nginx
does without aio: from the page cache they take microseconds. ``loop.sendfile`` would
skip the copy but needs the raw transport (no TLS, no HTTP/2 stream): it cannot go
through the Downstream.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

from portico.http.events import Body, Headers, Request, Response
from portico.policy.static_files import (
    REFUSED,
    Found,
    byte_range,
    choose,
    http_date,
    inside,
    locate,
    not_modified,
    regular,
)
from portico.proxy.downstream import Downstream, LocalBody
from portico.proxy.phases import Answer, RequestFilter

if TYPE_CHECKING:
    from portico.config.local_plan import StaticPlan

PART = 65536
_READ_METHODS = (b"GET", b"HEAD")
Done = Callable[[int, bool], None]  # (body bytes sent, the connection may be kept)


class FileAnswer(Answer):
    """A file (200, 206) or its validators (304): sent by ``send``, not ``send_answer``."""

    __slots__ = ("_file", "_first", "_found", "_length")

    def __init__(self, status: int, headers: Headers, found: Found, file: BinaryIO | None,
                 first: int = 0, length: int = 0) -> None:
        super().__init__(status, headers)
        self._found = found
        self._file = file
        self._first = first
        self._length = length

    def send(self, client: Downstream, request: Request, done: Done) -> None:
        declared: Headers = []
        if request.method == b"HEAD" and self.status != 304:
            declared = [(b"Content-Length", b"%d" % self._length)]
        client.start_response(
            Response(self.status, b"", b"1.1", declared, Body.LENGTH, self._length, True),
            self.headers)
        file = self._file
        if file is None or request.method == b"HEAD" or self._length == 0:
            if file is not None:
                file.close()
            client.end()
            done(0, True)
            return
        file.seek(self._first)
        client.send_body_from(FileBody(client, file, self._length, done))


class FileBody(LocalBody):
    __slots__ = ("_client", "_done", "_file", "_left", "_sent")

    def __init__(self, client: Downstream, file: BinaryIO, length: int, done: Done) -> None:
        self._client = client
        self._file = file
        self._left = length
        self._sent = 0
        self._done = done

    def pump(self) -> bool:
        part = self._file.read(min(PART, self._left))
        if part:
            self._left -= len(part)
            self._sent += len(part)
            self._client.send_data(part)
        if self._left and part:
            self._client.flush()
            return False
        self._client.end()
        self._file.close()
        return True

    def done(self) -> None:
        # a file that shrank while sent cannot keep its Content-Length: close
        self._done(self._sent, self._left == 0)

    def close(self) -> None:
        self._file.close()


class StaticRoute(RequestFilter):
    """GET and HEAD of the files under ``root``; 405 for other methods."""

    __slots__ = ("_index", "_prefix", "_root")

    def __init__(self, plan: StaticPlan, prefix: bytes) -> None:
        self._root = os.path.realpath(plan.root)
        self._index = plan.index
        self._prefix = prefix

    def answer(self, request: Request, client: Downstream) -> Answer | None:
        if request.method not in _READ_METHODS:
            return Answer(405, [(b"Allow", b"GET, HEAD")])
        path, mark, query = request.target.partition(b"?")
        rest = path[len(self._prefix):] if path.startswith(self._prefix) else path
        root = self._root
        name = locate(root, rest)
        if name == REFUSED or not inside(root, name):
            return Answer(403, [])
        if os.path.isdir(name):
            if not path.endswith(b"/"):
                return Answer(301, [(b"Location", path + b"/" + mark + query)])
            name = next((os.path.join(name, index) for index in self._index
                         if regular(root, os.path.join(name, index))), "")
        st = regular(root, name) if name else None
        if st is None:
            return Answer(404, [])
        found = choose(root, name, st, request.get(b"accept-encoding"))
        return _file_answer(found, request)


def _file_answer(found: Found, request: Request) -> Answer:
    headers: Headers = [(b"ETag", found.etag), (b"Last-Modified", http_date(found.mtime))]
    if found.varies:
        headers.append((b"Vary", b"Accept-Encoding"))
    if not_modified(found, request.get(b"if-none-match"), request.get(b"if-modified-since")):
        return FileAnswer(304, headers, found, None)
    headers += [(b"Content-Type", found.content_type), (b"Accept-Ranges", b"bytes")]
    if found.encoding:
        headers.append((b"Content-Encoding", found.encoding))
    span = byte_range(found, request.get(b"range"), request.get(b"if-range"))
    if span is False:
        return Answer(416, [(b"Content-Range", b"bytes */%d" % found.size)])
    try:
        file = open(found.path, "rb")  # noqa: SIM115 (closed by FileBody or send)
    except OSError:
        return Answer(403, [])
    if span is None or span is True:  # True is never returned: mypy's narrowing
        return FileAnswer(200, headers, found, file, 0, found.size)
    first, last = span
    headers.append((b"Content-Range", b"bytes %d-%d/%d" % (first, last, found.size)))
    return FileAnswer(206, headers, found, file, first, last - first + 1)


def static_filters(plan: StaticPlan | None, prefix: bytes) -> tuple[RequestFilter, ...]:
    """The route's answer, last of its request filters; none (no cost) for other routes."""
    return () if plan is None else (StaticRoute(plan, prefix),)
