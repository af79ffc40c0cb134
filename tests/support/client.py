"""Raw-socket clients: exact bytes out, everything that comes back, and whether it closed."""

from __future__ import annotations

import socket
import time
import weakref
from dataclasses import dataclass


@dataclass
class Reply:
    data: bytes
    closed: bool

    @property
    def status(self) -> int:
        return int(self.data.split(b" ", 2)[1]) if self.data.startswith(b"HTTP/") else 0

    @property
    def statuses(self) -> list[int]:
        out = []
        for part in self.data.split(b"HTTP/1.")[1:]:
            fields = part.split(b" ", 2)
            if len(fields) > 1 and fields[1][:3].isdigit():
                out.append(int(fields[1][:3]))
        return out

    @property
    def head(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[0]

    @property
    def body(self) -> bytes:
        return self.data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in self.data else b""

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def headers(self, name: bytes) -> list[bytes]:
        return [
            line.partition(b":")[2].strip()
            for line in self.head.split(b"\r\n")[1:]
            if line.partition(b":")[0].strip().lower() == name.lower()
        ]


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_until_quiet(sock: socket.socket, quiet: float = 1.0, limit: float = 15.0) -> Reply:
    """Read until the peer closes (closed=True) or sends nothing for ``quiet`` seconds."""
    chunks = []
    deadline = time.monotonic() + limit
    sock.settimeout(quiet)
    closed = False
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        chunks.append(data)
    return Reply(b"".join(chunks), closed)


def send_raw(port: int, data: bytes, quiet: float = 1.0) -> Reply:
    with connect(port) as sock:
        sock.sendall(data)
        return read_until_quiet(sock, quiet)


# Bytes read past one response (a pipelined next one, coalesced into the same recv):
# kept for the next read_response on that socket.
_unread: weakref.WeakKeyDictionary[socket.socket, bytes] = weakref.WeakKeyDictionary()


def read_response(sock: socket.socket, timeout: float = 10.0) -> Reply:
    """One Content-Length-framed response, without waiting for a close; the bytes of a
    next response that arrived with it are kept for the next call on ``sock``."""
    sock.settimeout(timeout)
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return Reply(data, True)
        data += piece
    head_end = data.index(b"\r\n\r\n") + 4
    length = int(Reply(data[:head_end], False).header(b"content-length") or 0)
    while len(data) < head_end + length:
        piece = sock.recv(65536)
        if not piece:
            return Reply(data, True)
        data += piece
    if len(data) > head_end + length:
        _unread[sock] = data[head_end + length:]
    return Reply(data[: head_end + length], False)
