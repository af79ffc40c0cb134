"""E. Exhaustion (catalogue cases 50-56) on the shared portico (1 s timeouts, 1 MiB bodies)."""

from __future__ import annotations

import threading
import time

from tests.conformance.conftest import Gateway, H
from tests.support.client import connect, read_until_quiet
from tests.support.recorder import Conn

POST = b"POST /myapp/ HTTP/1.1\r\n" + H


def sink(seen_eof: threading.Event) -> object:
    def handler(conn: Conn) -> None:
        while conn._fill():
            pass
        seen_eof.set()
    return handler


def test_e50_slowloris_gets_408_at_the_total_head_deadline(sock_gw: Gateway) -> None:
    with connect(sock_gw.port) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /myapp/ HTTP/1.1\r\n")
        sock.settimeout(0.25)
        data = b""
        for byte in b"X-Slow: " + b"a" * 40:  # a byte every 0.25 s keeps an idle timer happy
            try:
                sock.sendall(bytes([byte]))
                data += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if data:
                break
        reply = read_until_quiet(sock)
        waited = time.monotonic() - started
    assert (data + reply.data).startswith(b"HTTP/1.1 408 ")
    assert 0.9 < waited < 3 and sock_gw.upstream_saw_nothing


def test_e52_huge_content_length_is_413_before_reading(gw: Gateway) -> None:
    reply = gw.send(POST + b"Content-Length: 10000000000\r\n\r\nxxxx")
    assert reply.statuses == [413] and reply.closed and gw.upstream_saw_nothing


def test_e52_chunked_body_past_the_limit_is_413_and_the_upstream_is_dropped(sock_gw: Gateway) -> None:
    upstream_closed = threading.Event()
    sock_gw.recorder.reset_log(sink(upstream_closed))  # type: ignore[arg-type]
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"  # 64 KiB chunks, 1 MiB allowed
    with connect(sock_gw.port) as sock:
        sock.sendall(POST + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(20):
                sock.sendall(chunk)
        except OSError:
            pass
        reply = read_until_quiet(sock)
    assert reply.statuses == [413] and reply.closed
    assert upstream_closed.wait(3)


def test_e53_a_million_one_byte_chunks_stay_bounded(sock_gw: Gateway) -> None:
    def fast_sink(conn: Conn) -> None:
        while not conn.buffer.endswith(b"\r\n0\r\n\r\n") and conn._fill():
            conn.buffer = conn.buffer[-16:]  # keep only the tail: the body is checked by size
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    sock_gw.recorder.reset_log(fast_sink)
    rss_before = sock_gw.process.status_kib("VmRSS")
    cpu_before = _cpu(sock_gw.process.pid)
    body = b"1\r\nx\r\n" * 1_000_000 + b"0\r\n\r\n"
    with connect(sock_gw.port) as sock:
        sock.sendall(POST + b"Transfer-Encoding: chunked\r\n\r\n")
        sock.sendall(body)
        reply = read_until_quiet(sock, quiet=5, limit=60)
    assert reply.statuses == [200], reply.body
    body = _dechunk(bytes(sock_gw.recorder.connections[0].received).split(b"\r\n\r\n", 1)[1])
    assert body == b"x" * 1_000_000  # every byte arrived, in far fewer chunks
    # Bounds, generous on purpose (not a speed test): memory does not grow with the body,
    # and the CPU spent is that of streaming 6 MB, not of something quadratic.
    assert sock_gw.process.status_kib("VmRSS") - rss_before < 16 * 1024
    assert _cpu(sock_gw.process.pid) - cpu_before < 30


def test_e53_a_64k_chunk_extension_is_streamed_not_buffered(gw: Gateway) -> None:
    # Catalogue: cap it (400). llhttp parses extensions as a stream without buffering them,
    # and portico drops extensions when it re-chunks, so this is bounded as it is.
    reply = gw.send(POST + b"Transfer-Encoding: chunked\r\n\r\n2;" + b"e" * 65536 + b"\r\nxx\r\n0\r\n\r\n")
    assert reply.statuses == [200]
    assert gw.recorder.requests[0].body == b"xx"
    assert b"eeee" not in bytes(gw.recorder.connections[0].received)


def test_e53_leading_empty_lines_are_skipped(gw: Gateway) -> None:
    reply = gw.send(b"\r\n" * 100_000 + b"GET /myapp/ HTTP/1.1\r\n" + H + b"\r\n")
    assert reply.statuses == [200]


def test_e55_a_slow_reader_of_a_100_mib_response_keeps_buffers_bounded(sock_gw: Gateway) -> None:
    sent = [0]

    def big(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 * 2**20))
        chunk = b"x" * 65536
        for _ in range(1600):
            conn.sock.sendall(chunk)
            sent[0] += len(chunk)

    sock_gw.recorder.reset_log(big)
    rss_before = sock_gw.process.status_kib("VmRSS")
    received = 0
    with connect(sock_gw.port) as sock:
        sock.sendall(b"GET /myapp/ HTTP/1.1\r\n" + H + b"\r\n")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:  # about 160 KiB/s: far slower than the upstream
            received += len(sock.recv(4096))
            time.sleep(0.025)
        in_flight = sent[0] - received
        growth = sock_gw.process.status_kib("VmRSS") - rss_before
    # What the upstream got ahead of the client is the two socket buffers plus portico's
    # 64 KiB high-water mark, not the response: reading from the upstream was paused.
    print(f"E55: slow reader: upstream ahead by {in_flight / 2**20:.1f} MiB, RSS +{growth / 1024:.1f} MiB")
    assert in_flight < 16 * 2**20, in_flight
    assert growth < 8 * 1024, growth


def _cpu(pid: int) -> float:
    from pathlib import Path

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return b"".join(out)
        out.append(data[:size])
        data = data[size + 2 :]
