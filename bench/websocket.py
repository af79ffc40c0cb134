"""WebSocket echo messages per second through portico and through nginx, same backend,
same run (issue 17's figure; ``make bench-websocket``, or ``python bench/websocket.py``).

The backend answers any upgrade with a 101 and then echoes bytes (an echo server whose
own cost is as small as Python allows, so the proxies' differ); the load is CONNECTIONS
WebSocket connections, each keeping WINDOW small masked frames in flight. The proxy runs
on CPU 0, backend and load on CPU 1 (as in bench/run.py). Rounds alternate the proxies;
the ratio is the median of each round's portico/nginx ratio.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from servers import LOAD_CPU, PROXY_CPU, free_port, nginx_conf, pinned, wait_port

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 20
WINDOW = 16
FRAME = b"\x82\x90\x00\x00\x00\x00" + b"0123456789abcdef"  # masked, 16-byte payload
HANDSHAKE = (b"GET /ws/echo HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\n"
             b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")

BACKEND = """
import asyncio, sys
SWITCHED = (b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n"
            b"Connection: Upgrade\\r\\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\\r\\n\\r\\n")
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.head = transport, b""
    def data_received(self, data):
        if self.head is not None:
            self.head += data
            if b"\\r\\n\\r\\n" not in self.head:
                return
            data = self.head.partition(b"\\r\\n\\r\\n")[2]
            self.head = None
            self.transport.write(SWITCHED)
        if data:
            self.transport.write(data)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


class Load(asyncio.Protocol):
    """One client connection: handshake, then WINDOW frames in flight, refilled as they
    come back."""

    def __init__(self, counts: list[int], ready: asyncio.Future[None]) -> None:
        self.counts = counts
        self.ready = ready
        self.head: bytes | None = b""
        self.pending = 0  # bytes of echo still to make a whole frame
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(HANDSHAKE)

    def data_received(self, data: bytes) -> None:
        if self.head is not None:
            self.head += data
            if b"\r\n\r\n" not in self.head:
                return
            assert self.head.startswith(b"HTTP/1.1 101"), self.head[:100]
            data = self.head.partition(b"\r\n\r\n")[2]
            self.head = None
            assert self.transport is not None
            self.transport.write(FRAME * WINDOW)
            if not self.ready.done():
                self.ready.set_result(None)
        total = self.pending + len(data)
        whole, self.pending = divmod(total, len(FRAME))
        if whole:
            self.counts[0] += whole
            assert self.transport is not None
            self.transport.write(FRAME * whole)


async def measure(port: int, seconds: float) -> float:
    loop = asyncio.get_running_loop()
    counts = [0]
    transports = []
    for _ in range(CONNECTIONS):
        ready: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(lambda r=ready: Load(counts, r),
                                                    "127.0.0.1", port)
        await asyncio.wait_for(ready, 10)
        transports.append(transport)
    await asyncio.sleep(0.5)  # warm
    start, first = time.perf_counter(), counts[0]
    await asyncio.sleep(seconds)
    rate = (counts[0] - first) / (time.perf_counter() - start)
    for transport in transports:
        transport.abort()
    return rate


def run_load(port: int) -> float:
    """The load in a process of its own, on the load CPU; returns messages per second."""
    code = (f"import asyncio, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import websocket as w; print(asyncio.run(w.measure({port}, {SECONDS})))")
    out = subprocess.run(pinned(LOAD_CPU, [sys.executable, "-c", code]), capture_output=True,
                         text=True, timeout=SECONDS + 60, check=True).stdout
    return float(out.strip())


def start(argv: list[str], port: int, cpu: int | None, env: dict[str, str] | None = None,
          ) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(pinned(cpu, argv), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    wait_port(port, 60)
    return proc


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="portico-ws-bench-") as tmp:
        work = Path(tmp)
        backend, nginx, portico = free_port(), free_port(), free_port()
        script = work / "echo.py"
        script.write_text(BACKEND)
        procs = [start([sys.executable, str(script), str(backend)], backend, LOAD_CPU)]
        conf = nginx_conf(work, f"""
        access_log off;
        server {{
            listen 127.0.0.1:{nginx} backlog=4096;
            location /ws/ {{
                proxy_pass http://127.0.0.1:{backend}/;
                proxy_http_version 1.1;
                proxy_set_header Upgrade $http_upgrade;
                proxy_set_header Connection "upgrade";
                proxy_read_timeout 300s;
            }}
        }}""")
        procs.append(start(["nginx", "-c", str(conf), "-p", str(work)], nginx, PROXY_CPU))
        (work / "portico.toml").write_text(f"""
[server]
listen = ["http://127.0.0.1:{portico}"]
access_log = "off"

[[route]]
path = "/ws"
upstream = "http://127.0.0.1:{backend}/"
""")
        env = {**os.environ, "PORTICO_STATE_DIR": str(work / "state")}
        procs.append(start([sys.executable, "-m", "portico", "run", "-c",
                            str(work / "portico.toml")], portico, PROXY_CPU, env))
        try:
            ratios, rates = [], {"portico": [], "nginx": []}  # type: dict[str, list[float]]
            for _ in range(ROUNDS):
                rates["nginx"].append(run_load(nginx))
                rates["portico"].append(run_load(portico))
                ratios.append(rates["portico"][-1] / rates["nginx"][-1])
            for name, values in rates.items():
                print(f"{name:8} {statistics.median(values):>10,.0f} messages/s "
                      f"(rounds: {', '.join(f'{v:,.0f}' for v in values)})")
            print(f"websocket echo: portico / nginx = {statistics.median(ratios):.2f}x "
                  f"(target >= 0.8x; {CONNECTIONS} connections x {WINDOW} in flight, "
                  f"{len(FRAME) - 6}-byte messages)")
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


if __name__ == "__main__":
    main()
