"""A raw HTTP/2 client for frame-level tests: hyperframe frames out, frames back, no h2.

The client sends exactly the frames a test builds (malformed ones included) and reads
what portico answers; ``outcome`` sums up how the connection ended for an error case.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from hpack import Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class RawH2:
    def __init__(self, port: int, handshake: bool = True, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.encoder = Encoder()
        self.buffer = b""
        self.closed = False
        self.frames: list[Frame] = []
        if handshake:
            self.send_bytes(PREFACE + SettingsFrame(0).serialize())
            self.read_until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
            self.send(SettingsFrame(0, flags=["ACK"]))

    def close(self) -> None:
        self.sock.close()

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, *frames: Frame) -> None:
        self.sock.sendall(b"".join(frame.serialize() for frame in frames))

    def block(self, fields: list[tuple[str, str]]) -> bytes:
        return bytes(self.encoder.encode(fields))

    def request(self, sid: int, path: str = "/myapp/", method: str = "GET",
                extra: list[tuple[str, str]] | None = None, end_stream: bool = True,
                authority: str = "localhost") -> HeadersFrame:
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", authority), *(extra or [])]
        flags = ["END_HEADERS", *(["END_STREAM"] if end_stream else [])]
        return HeadersFrame(sid, self.block(fields), flags=flags)

    def _read_frame(self, deadline: float) -> Frame | None:
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(self.buffer[9:9 + length]))
                    self.buffer = self.buffer[9 + length:]
                    self.frames.append(frame)
                    return frame
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return None
            self.buffer += data

    def read_until(self, done: Any, timeout: float = 5.0) -> Frame | None:
        """Frames until one for which ``done(frame)`` is true (returned), or None at
        the close or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._read_frame(deadline)
            if frame is None or done(frame):
                return frame

    def response(self, sid: int, timeout: float = 5.0) -> tuple[dict[str, str], bytes]:
        """The decoded response head and body of stream ``sid``."""
        from hpack import Decoder

        decoder = getattr(self, "_decoder", None) or Decoder()
        self._decoder = decoder
        head: dict[str, str] = {}
        body = b""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._read_frame(deadline)
            if frame is None:
                raise AssertionError(f"no complete response on stream {sid}: {self.frames}")
            if isinstance(frame, HeadersFrame | ContinuationFrame) and frame.stream_id == sid:
                for name, value in decoder.decode(frame.data):
                    head[str(name)] = str(value)
            elif isinstance(frame, HeadersFrame | ContinuationFrame):
                decoder.decode(frame.data)  # keep the dynamic table in step
            elif isinstance(frame, DataFrame) and frame.stream_id == sid:
                body += frame.data
            elif isinstance(frame, RstStreamFrame | GoAwayFrame):
                raise AssertionError(f"stream {sid} ended by {frame}")
            if frame.stream_id == sid and "END_STREAM" in frame.flags:
                return head, body

    def outcome(self, timeout: float = 5.0) -> str:
        """How an error case ended: "GOAWAY <code>", "RST_STREAM <code>", "closed", or
        "nothing" (the connection carried on)."""
        frame = self.read_until(lambda f: isinstance(f, GoAwayFrame | RstStreamFrame), timeout)
        if isinstance(frame, GoAwayFrame):
            return f"GOAWAY {frame.error_code}"
        if isinstance(frame, RstStreamFrame):
            return f"RST_STREAM {frame.error_code}"
        return "closed" if self.closed else "nothing"
