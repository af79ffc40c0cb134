"""HTTP/2 to clients: curl, httpx and raw frames against a real portico, a real upstream.

One portico (http and https listeners, 20 streams per connection) and one recording
upstream serve the whole module. The frame-level cases are named after h2spec's
section titles (h2spec itself is not packaged here); each sends the frames h2spec
would and asserts the error RFC 9113 asks for.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    PriorityFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.support.h2raw import PREFACE, RawH2
from tests.support.portico_proc import Portico, StartPortico
from tests.support.recorder import Conn, Recorder
from tests.support.tls import cert_block, make, tls_config

MAX_STREAMS = 20
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 1, 3, 6
REFUSED_STREAM, COMPRESSION_ERROR, ENHANCE_YOUR_CALM = 7, 9, 11
held = threading.Event()
released = threading.Event()  # portico closed the held upstream connection


def app(conn: Conn) -> None:
    """Echoes a body (or says hello); ``hold`` is never answered, ``slow`` after 1 s,
    ``big`` is 1 MB. Every answer carries fields HTTP/2 must not see."""
    while (seen := conn.read_request()) is not None:
        target = seen.target
        if b"hold" in target:
            held.set()
            while conn._fill():  # until portico closes it
                pass
            released.set()
            return
        if b"slow" in target:
            time.sleep(1.0)
        body = b"x" * 1_000_000 if b"big" in target else (seen.body or b"hello")
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: keep-alive, X-Hop\r\n"
            b"Keep-Alive: timeout=5\r\nX-Hop: secret\r\nX-Seen-Host: %s\r\n"
            b"X-Seen-Cookie: %s\r\nX-Seen-TE: %s\r\n\r\n%s"
            % (len(body), seen.header(b"x-forwarded-host") or b"", seen.header(b"cookie") or b"",
               seen.header(b"te") or b"-", body))


@pytest.fixture(scope="module")
def upstream() -> Iterator[Recorder]:
    rec = Recorder(app)
    yield rec
    rec.close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, upstream: Recorder) -> Iterator[Portico]:
    tmp = tmp_path_factory.mktemp("h2")
    cert, key = make(tmp / "ca", "localhost")
    config = tls_config(tmp / "ca", upstream.url,
                        server=f"[server.http2]\nmax_concurrent_streams = {MAX_STREAMS}",
                        certs=cert_block(cert, key, ["localhost"]))
    proc = Portico(config, tmp)
    yield proc
    proc.stop()
    assert "Traceback" not in proc.log_text(), proc.log_text()


@pytest.fixture(scope="module")
def ca(proxy: Portico) -> Path:
    return proxy.config_path.parent / "ca" / "ca.pem"


# -- real clients -------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (make test-deps-http2)")
def test_curl_speaks_http2_over_tls_and_with_prior_knowledge(proxy: Portico, ca: Path) -> None:
    tls = subprocess.run(
        ["curl", "-s", "--http2", "--cacert", str(ca), "--resolve",
         f"localhost:{proxy.https_port}:127.0.0.1", "-w", " %{http_version}",
         f"https://localhost:{proxy.https_port}/myapp/tls"],
        capture_output=True, text=True, timeout=20)
    assert tls.stdout == "hello 2", tls.stderr
    h2c = subprocess.run(
        ["curl", "-s", "--http2-prior-knowledge", "-w", " %{http_version}",
         f"{proxy.url}/myapp/cleartext"], capture_output=True, text=True, timeout=20)
    assert h2c.stdout == "hello 2", h2c.stderr
    plain = subprocess.run(["curl", "-s", "-w", " %{http_version}", f"{proxy.url}/myapp/h1"],
                           capture_output=True, text=True, timeout=20)
    assert plain.stdout == "hello 1.1"


def test_httpx_http2_with_the_header_rules_of_http1(proxy: Portico, ca: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    base = f"https://localhost:{proxy.https_port}"
    with httpx.Client(http2=True, verify=context) as client:
        got = client.get(f"{base}/myapp/a", headers=[("cookie", "a=1"), ("cookie", "b=2"),
                                                     ("te", "trailers")])
        assert got.http_version == "HTTP/2"
        assert got.text == "hello"
        assert got.headers["x-seen-host"] == f"localhost:{proxy.https_port}"  # :authority
        assert got.headers["x-seen-cookie"] == "a=1; b=2"  # crumbs joined for HTTP/1.1
        assert got.headers["x-seen-te"] == "-"  # te: trailers is hop-by-hop in HTTP/1.1
        for hop in ("connection", "keep-alive", "x-hop"):  # named by Connection upstream
            assert hop not in got.headers
        posted = client.post(f"{base}/myapp/echo", content=b"p" * 300_000)
        assert posted.content == b"p" * 300_000
        assert client.get(f"{base}/nowhere").status_code == 404


# -- frame level, one case per h2spec section title -----------------------------------------

def _oversized_data(raw: RawH2) -> list[Frame]:
    return [raw.request(1, method="POST", end_stream=False), DataFrame(1, b"x" * 16385)]


def _bad_block(raw: RawH2) -> list[Frame]:
    return [HeadersFrame(1, b"\xff\xff\xff\xff", flags=["END_HEADERS", "END_STREAM"])]


def _fields(raw: RawH2, fields: list[tuple[str, str]]) -> list[Frame]:
    return [HeadersFrame(1, raw.block(fields), flags=["END_HEADERS", "END_STREAM"])]


def frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    """A frame's bytes as given, for those hyperframe refuses to build."""
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + sid.to_bytes(4, "big") + payload


BASE = [(":method", "GET"), (":scheme", "http"), (":path", "/myapp/"), (":authority", "a")]
CASES: dict[str, tuple[object, set[str]]] = {
    "4.2 Frame Size": (_oversized_data, {f"GOAWAY {FRAME_SIZE_ERROR}", "closed"}),
    "4.3 Header Compression and Decompression": (
        _bad_block, {f"GOAWAY {COMPRESSION_ERROR}", "closed"}),
    "5.1 Stream States": (lambda raw: [DataFrame(1, b"x")], {f"GOAWAY {PROTOCOL_ERROR}"}),
    "5.1.1 Stream Identifiers": (lambda raw: [raw.request(2)], {f"GOAWAY {PROTOCOL_ERROR}"}),
    "5.3.1 Stream Dependencies": (
        lambda raw: [PriorityFrame(1, depends_on=1, stream_weight=16)],
        {f"GOAWAY {PROTOCOL_ERROR}", f"RST_STREAM {PROTOCOL_ERROR}"}),
    "5.5 Extending HTTP/2": (
        lambda raw: [HeadersFrame(1, raw.block(BASE)), ContinuationFrame(3, b"")],
        {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.1 DATA": (lambda raw: [frame(0x0, 0, 0, b"x")], {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.2 HEADERS": (lambda raw: [frame(0x1, 0x4, 0, raw.block(BASE))],
                    {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.4 RST_STREAM": (lambda raw: [RstStreamFrame(1, error_code=8)],
                       {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.5 SETTINGS": (lambda raw: [frame(0x4, 0, 1, b"")], {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.5.2 Defined SETTINGS Parameters": (
        lambda raw: [SettingsFrame(0, settings={0x2: 2})], {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.8 GOAWAY": (lambda raw: [frame(0x7, 0, 1, bytes(8))], {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.9 WINDOW_UPDATE": (lambda raw: [WindowUpdateFrame(0, window_increment=0)],
                          {f"GOAWAY {PROTOCOL_ERROR}"}),
    "6.9.1 The Flow-Control Window": (
        lambda raw: [WindowUpdateFrame(0, window_increment=2**31 - 1)],
        {f"GOAWAY {FLOW_CONTROL_ERROR}"}),
    "6.10 CONTINUATION": (lambda raw: [raw.request(1), ContinuationFrame(1, b"")],
                          {f"GOAWAY {PROTOCOL_ERROR}"}),
    "8.1.2 HTTP Header Fields": (lambda raw: _fields(raw, [*BASE, ("X-Upper", "1")]),
                                 {f"GOAWAY {PROTOCOL_ERROR}", f"RST_STREAM {PROTOCOL_ERROR}"}),
    "8.1.2.1 Pseudo-Header Fields": (
        lambda raw: _fields(raw, [*BASE, (":unknown", "1")]),
        {f"GOAWAY {PROTOCOL_ERROR}", f"RST_STREAM {PROTOCOL_ERROR}"}),
    "8.1.2.2 Connection-Specific Header Fields": (
        lambda raw: _fields(raw, [*BASE, ("connection", "keep-alive")]),
        {f"GOAWAY {PROTOCOL_ERROR}", f"RST_STREAM {PROTOCOL_ERROR}"}),
    "8.1.2.3 Request Pseudo-Header Fields": (
        lambda raw: _fields(raw, BASE[:2] + BASE[3:]),  # no :path
        {f"GOAWAY {PROTOCOL_ERROR}", f"RST_STREAM {PROTOCOL_ERROR}"}),
    "8.2 Server Push": (lambda raw: [raw.request(1, "/myapp/hold", end_stream=False),
                                     frame(0x5, 0x4, 1, bytes(4) + raw.block(BASE))],
                        {f"GOAWAY {PROTOCOL_ERROR}"}),
    "8.1.2.6 Malformed Requests and Responses": (
        lambda raw: [HeadersFrame(1, raw.block([*BASE, ("content-length", "5")]),
                                  flags=["END_HEADERS"]), DataFrame(1, b"x", flags=["END_STREAM"])],
        {f"GOAWAY {PROTOCOL_ERROR}", f"RST_STREAM {PROTOCOL_ERROR}"}),
}


@pytest.mark.parametrize("title", list(CASES))
def test_h2spec_section(proxy: Portico, title: str) -> None:
    build, expected = CASES[title]
    raw = RawH2(proxy.port)
    try:
        for piece in build(raw):  # type: ignore[operator]
            raw.send_bytes(piece if isinstance(piece, bytes) else piece.serialize())
        assert raw.outcome() in expected, raw.frames
    finally:
        raw.close()


def test_h2spec_3_5_connection_preface(proxy: Portico) -> None:
    """A bad preface is a connection error (here: not HTTP/2 at all, so HTTP/1.1's 400)."""
    raw = RawH2(proxy.port, handshake=False)
    raw.send_bytes(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + SettingsFrame(0).serialize())
    assert raw.outcome() in {f"GOAWAY {PROTOCOL_ERROR}", "closed"}
    raw.close()


def test_h2spec_generic_4_1_6_7_and_8_1(proxy: Portico) -> None:
    """generic: a GET and a POST; 4.1 Frame Format: unknown frame types and flags are
    ignored; 6.7 PING is answered with its payload; 7 Error Codes: an unknown code in
    RST_STREAM is no connection error; 8.1 HTTP Request/Response Exchange: trailers."""
    raw = RawH2(proxy.port)
    try:
        raw.send_bytes(b"\x00\x00\x01\xee\xff\x00\x00\x00\x00x")  # type 0xee, all flags
        raw.send(PingFrame(0, opaque_data=b"12345678"))
        ack = raw.read_until(lambda f: isinstance(f, PingFrame))
        assert isinstance(ack, PingFrame) and "ACK" in ack.flags
        assert ack.opaque_data == b"12345678"
        raw.send(raw.request(1))
        head, body = raw.response(1)
        assert head[":status"] == "200" and body == b"hello"
        raw.send(raw.request(3, "/myapp/post", "POST", end_stream=False),
                 DataFrame(3, b"abc"),
                 HeadersFrame(5 - 2, raw.block([("x-trailer", "1")]),
                              flags=["END_HEADERS", "END_STREAM"]))
        head, body = raw.response(3)
        assert head[":status"] == "200" and body == b"abc"
        raw.send(raw.request(5, "/myapp/hold"), RstStreamFrame(5, error_code=0xBAD))
        raw.send(raw.request(7))
        assert raw.response(7)[1] == b"hello"
    finally:
        raw.close()


def test_h2spec_6_9_2_initial_window_and_a_stream_that_does_not_read(proxy: Portico) -> None:
    """6.9.2 Initial Flow-Control Window Size: a stream whose window stays closed gets
    no more than it allows, and does not stall another stream on the connection."""
    raw = RawH2(proxy.port)
    try:
        raw.send(WindowUpdateFrame(0, window_increment=10_000_000), raw.request(1, "/myapp/big"))
        time.sleep(0.3)  # let the big response fill its stream window
        raw.send(raw.request(3, "/myapp/small"))
        assert raw.response(3)[1] == b"hello"
        stream_one = sum(len(f.data) for f in raw.frames
                         if isinstance(f, DataFrame) and f.stream_id == 1)
        assert stream_one <= 65535  # the client's initial window, never more
        raw.send(WindowUpdateFrame(1, window_increment=2_000_000))
        _, body = raw.response(1, timeout=10)
        assert len(body) + stream_one == 1_000_000
    finally:
        raw.close()


# -- abuse, and a client's reset --------------------------------------------------------------

def test_a_reset_stream_closes_its_upstream_connection(proxy: Portico,
                                                       upstream: Recorder) -> None:
    held.clear()
    released.clear()
    raw = RawH2(proxy.port)
    try:
        raw.send(raw.request(1, "/myapp/hold"))
        assert held.wait(5)
        raw.send(RstStreamFrame(1, error_code=8))
        assert released.wait(5)  # closed, not pooled
        raw.send(raw.request(3))
        assert raw.response(3)[1] == b"hello"  # the connection itself carries on
    finally:
        raw.close()


def rapid_reset(port: int, pairs: int) -> str:
    """``pairs`` HEADERS+RST_STREAM on one connection, in writes of 50; the outcome."""
    raw = RawH2(port)
    try:
        for start in range(0, pairs, 50):
            frames: list[Frame] = []
            for sid in range(2 * start + 1, 2 * (start + 50) + 1, 2):
                frames += [raw.request(sid, "/myapp/hold"), RstStreamFrame(sid, error_code=8)]
            try:
                raw.send(*frames)
            except OSError:
                break
        return raw.outcome(timeout=5)
    finally:
        raw.close()


def test_rapid_reset_starts_few_upstream_requests(proxy: Portico, upstream: Recorder) -> None:
    before = len(upstream.requests)
    outcome = rapid_reset(proxy.port, 2000)
    assert outcome in {f"GOAWAY {ENHANCE_YOUR_CALM}", "nothing"}
    time.sleep(0.3)
    assert len(upstream.requests) - before <= 2 * MAX_STREAMS


def test_floods_end_in_enhance_your_calm(proxy: Portico) -> None:
    for flood in ([PingFrame(0, opaque_data=b"8bytes!!")] * 3000,
                  [SettingsFrame(0)] * 3000,
                  [RstStreamFrame(1, 8)] + [DataFrame(1, b"")] * 3000):
        raw = RawH2(proxy.port)
        try:
            frames: list[Frame] = list(flood)
            if isinstance(frames[0], RstStreamFrame):
                frames = [raw.request(1, "/myapp/hold", "POST", end_stream=False),
                          *frames[1:]]
            with contextlib.suppress(OSError):  # portico may close mid-flood
                raw.send(*frames)
            assert raw.outcome() in {f"GOAWAY {ENHANCE_YOUR_CALM}", "closed"}
        finally:
            raw.close()
    raw = RawH2(proxy.port)  # 65 CONTINUATIONs
    try:
        frames = [HeadersFrame(1, raw.block(BASE)[:1])]
        frames += [ContinuationFrame(1, b"") for _ in range(100)]
        raw.send(*frames)
        assert raw.outcome() in {f"GOAWAY {ENHANCE_YOUR_CALM}", "closed"}
    finally:
        raw.close()


@pytest.mark.long
def test_rapid_reset_10000_memory_and_a_second_client(proxy: Portico,
                                                      upstream: Recorder) -> None:
    """The issue's figure: 10,000 HEADERS+RST on one connection start at most 2x the
    stream limit of upstream requests, RSS grows < 10 MiB, and a second client's p99
    stays within 2x of its baseline."""

    def p99() -> float:
        times = []
        with httpx.Client(base_url=proxy.url) as client:
            for _ in range(200):
                started = time.perf_counter()
                client.get("/myapp/p")
                times.append(time.perf_counter() - started)
        return sorted(times)[197]

    baseline = p99()
    rss = proxy.status_kib("VmRSS")
    before = len(upstream.requests)
    during: list[float] = []
    second = threading.Thread(target=lambda: during.append(p99()))
    second.start()
    outcome = rapid_reset(proxy.port, 10_000)
    second.join()
    started = len(upstream.requests) - before - 200
    grown = proxy.status_kib("VmRSS") - rss
    print(f"rapid reset: {outcome}, {started} upstream requests started, RSS +{grown} KiB, "
          f"second client's p99 {baseline * 1e3:.1f} -> {during[0] * 1e3:.1f} ms")
    assert outcome in {f"GOAWAY {ENHANCE_YOUR_CALM}", "nothing"}
    assert started <= 2 * MAX_STREAMS
    assert grown < 10 * 1024
    assert during[0] < 2 * baseline + 0.005, (baseline, during)


# -- turned off; the guide's config, and a graceful stop ---------------------------------------------------------

def test_http2_turned_off(start_portico: StartPortico, tmp_path: Path,
                          upstream: Recorder) -> None:
    cert, key = make(tmp_path / "ca", "localhost")
    proc = start_portico(tls_config(tmp_path / "ca", upstream.url,
                                    server="[server.http2]\nenabled = false",
                                    certs=cert_block(cert, key, ["localhost"])))
    context = ssl.create_default_context(cafile=str(tmp_path / "ca" / "ca.pem"))
    with httpx.Client(http2=True, verify=context) as client:
        got = client.get(f"https://localhost:{proc.https_port}/myapp/")
        assert got.http_version == "HTTP/1.1" and got.text == "hello"
    with socket.create_connection(("127.0.0.1", proc.port)) as sock:
        sock.sendall(PREFACE + SettingsFrame(0).serialize())
        assert sock.recv(100).startswith(b"HTTP/1.1 400")


def test_the_guide_config_then_a_graceful_stop(start_portico: StartPortico,
                                                upstream: Recorder) -> None:
    """The guide's config serves h2c; SIGTERM sends GOAWAY(NO_ERROR) naming the last
    stream, which finishes, and then the connection closes."""
    guide = (Path(__file__).parents[2] / "docs" / "guide" / "http2.md").read_text()
    config = guide.split("```toml\n")[1].split("```")[0]
    config = config.replace("127.0.0.1:8080", "127.0.0.1:0").replace(
        "http://127.0.0.1:8000/", upstream.url)
    proc = start_portico(config)
    with httpx.Client(http1=False, http2=True) as client:
        got = client.get(f"{proc.url}/myapp/guide")
        assert got.http_version == "HTTP/2" and got.text == "hello"
    raw = RawH2(proc.port)
    try:
        raw.send(raw.request(1, "/myapp/slow"))
        time.sleep(0.2)
        proc.proc.send_signal(signal.SIGTERM)
        goaway = raw.read_until(lambda f: isinstance(f, GoAwayFrame))
        assert isinstance(goaway, GoAwayFrame)
        assert goaway.error_code == 0 and goaway.last_stream_id == 1
        head, body = raw.response(1)
        assert head[":status"] == "200" and body == b"hello"
        assert raw.read_until(lambda f: False, timeout=5) is None and raw.closed
    finally:
        raw.close()
