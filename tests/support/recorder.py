"""A recording upstream: real sockets, exact bytes in, scripted bytes out.

Each accepted connection runs ``handler(conn)`` in a thread. ``conn.read_request()``
reads one request (head plus CL or chunked body) and records it, so a test can
assert on exactly what reached the upstream, or that nothing did.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Seen:
    head: bytes
    body: bytes
    raw: bytes

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    @property
    def target(self) -> bytes:
        return self.request_line.split(b" ")[1]

    def headers(self, name: bytes) -> list[bytes]:
        out = []
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                out.append(value.strip())
        return out

    def header(self, name: bytes) -> bytes | None:
        values = self.headers(name)
        return values[0] if values else None


@dataclass
class Conn:
    sock: socket.socket
    recorder: Recorder
    buffer: bytes = b""
    received: bytearray = field(default_factory=bytearray)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        if not data:
            return False
        self.buffer += data
        self.received += data
        self.recorder.changed()
        return True

    def read_request(self, keep_body: bool = True) -> Seen | None:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return None
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        seen = Seen(head, b"", b"")
        if (seen.header(b"transfer-encoding") or b"").lower() == b"chunked":
            body = self._read_chunked(keep_body)
        else:
            body = self._read_exact(int(seen.header(b"content-length") or 0), keep_body)
        if body is None:
            return None
        seen.body = body
        seen.raw = head + b"\r\n\r\n"
        self.recorder.requests.append(seen)
        self.recorder.changed()
        return seen

    def _read_exact(self, length: int, keep: bool) -> bytes | None:
        parts = []
        remaining = length
        while remaining:
            if not self.buffer and not self._fill_big():
                return None
            piece = self.buffer[:remaining]
            self.buffer = self.buffer[len(piece) :]
            remaining -= len(piece)
            if keep:
                parts.append(piece)
        return b"".join(parts)

    def _fill_big(self) -> bool:
        try:
            data = self.sock.recv(1 << 20)
        except OSError:
            return False
        if not data:
            return False
        self.buffer += data
        if len(self.received) < 1 << 20:
            self.received += data[:65536]
        self.recorder.changed()
        return True

    def _read_chunked(self, keep: bool) -> bytes | None:
        parts: list[bytes] = []
        while True:
            while b"\r\n" not in self.buffer:
                if not self._fill():
                    return None
            line, _, self.buffer = self.buffer.partition(b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in self.buffer:  # trailers end with an empty line
                    if not self._fill():
                        return None
                _, _, self.buffer = self.buffer.partition(b"\r\n")
                return b"".join(parts)
            data = self._read_exact(size + 2, True)
            if data is None:
                return None
            if keep:
                parts.append(data[:-2])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def reset(self) -> None:
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Handler = Callable[[Conn], None]


def answer_once(response: bytes) -> Handler:
    """Read one request, answer it with ``response``, say nothing more."""
    def handler(conn: Conn) -> None:
        if conn.read_request() is not None:
            conn.send(response)
    return handler


def ok_handler(conn: Conn) -> None:
    while conn.read_request() is not None:
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")


class Recorder:
    def __init__(self, handler: Handler = ok_handler) -> None:
        self.handler = handler
        self.requests: list[Seen] = []
        self.connections: list[Conn] = []
        self._progress = threading.Condition()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(2048)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            conn = Conn(sock, self)
            self.connections.append(conn)
            self.changed()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Conn) -> None:
        try:
            self.handler(conn)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.sock.close()

    def changed(self) -> None:
        """Something arrived: a connection, bytes or a whole request."""
        with self._progress:
            self._progress.notify_all()

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        """Until ``condition()`` holds of what arrived (instead of sleeping "long enough")."""
        with self._progress:
            assert self._progress.wait_for(condition, timeout), f"timed out waiting for {what}"

    def reset_log(self, handler: Handler | None = None) -> None:
        self.requests.clear()
        self.connections.clear()
        if handler is not None:
            self.handler = handler

    def close(self) -> None:
        self._sock.close()
