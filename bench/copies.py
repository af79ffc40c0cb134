"""Which way of moving large bodies wins: the question issue 6 asks, measured on its own.

Three byte relays between wrk and the nginx origin (1 MiB GETs), each one
process pinned like the proxies in ``make bench``, differing only in how
bytes cross the process:

* ``protocol``: ``asyncio.Protocol``; uvloop reads into its buffer and hands
  over a new ``bytes`` (one userland copy), which is written on. Portico's way.
* ``buffered``: ``asyncio.BufferedProtocol``; uvloop reads straight into our
  buffer and a view of it is written on. While uvloop still holds part of a
  view (a write that did not complete), the next read gets a fresh buffer.
* ``splice``: ``os.splice`` through a pipe, socket to socket, driven by
  ``add_reader``/``add_writer`` on the raw descriptors: no userland copy at all.

    cd bench && ../.venv/bin/python copies.py [SECONDS] [ROUNDS]

Prints MiB/s and MiB/s per relay core (CPU time from /proc), medians of the rounds.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

BUFFER = 256 * 1024
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, Linux


class Pipe(asyncio.Protocol):
    """Mode ``protocol``: whatever arrives is written to the peer."""

    def __init__(self) -> None:
        self.peer: Pipe | None = None
        self.transport: asyncio.Transport | None = None
        self.waiting: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.waiting.append(data)
        else:
            peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class Buffered(asyncio.BufferedProtocol):
    """Mode ``buffered``: read into our buffer, write a view of it."""

    def __init__(self) -> None:
        self.peer: Buffered | None = None
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray(BUFFER)
        self.view = memoryview(self.buffer)
        self.waiting: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        peer = self.peer
        if peer is not None and peer.transport is not None and \
                peer.transport.get_write_buffer_size():
            # uvloop may still hold a view of the old buffer: never overwrite it.
            self.buffer = bytearray(BUFFER)
            self.view = memoryview(self.buffer)
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self.waiting.append(bytes(self.view[:nbytes]))
        else:
            peer.transport.write(self.view[:nbytes])

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


async def serve_transports(port: int, origin: int, kind: type) -> None:
    loop = asyncio.get_running_loop()
    connecting: set[asyncio.Task[None]] = set()

    def client() -> asyncio.BaseProtocol:
        near = kind()

        async def connect() -> None:
            _, far = await loop.create_connection(kind, "127.0.0.1", origin)
            far.peer, near.peer = near, far
            for data in near.waiting:
                far.transport.write(data)
            near.waiting = []

        task = loop.create_task(connect())
        connecting.add(task)
        task.add_done_callback(connecting.discard)
        return near  # type: ignore[no-any-return]

    await loop.create_server(client, "127.0.0.1", port, backlog=4096)
    await asyncio.Event().wait()


class Splice:
    """Mode ``splice``: one direction, socket -> pipe -> socket, no userland copy."""

    def __init__(self, loop: asyncio.AbstractEventLoop, src: socket.socket,
                 dst: socket.socket) -> None:
        self.loop, self.src, self.dst = loop, src, dst
        self.read_end, self.write_end = os.pipe2(os.O_NONBLOCK)
        fcntl.fcntl(self.write_end, F_SETPIPE_SZ, BUFFER)
        self.in_pipe = 0
        self.partner: Splice | None = None  # the other direction of the same connection
        self.closed = False
        loop.add_reader(src.fileno(), self.readable)

    def readable(self) -> None:
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        try:
            moved = os.splice(self.src.fileno(), self.write_end, BUFFER, flags=flags)
        except BlockingIOError:
            return
        except OSError:
            moved = 0
        if moved == 0:
            self.close()
            return
        self.in_pipe += moved
        self.drain()

    def drain(self) -> None:
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        while self.in_pipe:
            try:
                self.in_pipe -= os.splice(self.read_end, self.dst.fileno(), self.in_pipe,
                                          flags=flags)
            except BlockingIOError:
                self.loop.remove_reader(self.src.fileno())
                self.loop.add_writer(self.dst.fileno(), self.writable)
                return
            except OSError:
                self.close()
                return

    def writable(self) -> None:
        self.loop.remove_writer(self.dst.fileno())
        self.drain()
        if not self.in_pipe:
            self.loop.add_reader(self.src.fileno(), self.readable)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self.src.fileno(), self.dst.fileno()):
            if fd >= 0:
                self.loop.remove_reader(fd)
                self.loop.remove_writer(fd)
        for fd in (self.read_end, self.write_end):
            os.close(fd)
        if self.partner is not None:
            self.partner.close()
        for sock in (self.src, self.dst):
            sock.close()


async def serve_splice(port: int, origin: int) -> None:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", port), backlog=4096)
    listener.setblocking(False)
    while True:
        near, _ = await loop.sock_accept(listener)
        far = socket.socket()
        far.setblocking(False)
        await loop.sock_connect(far, ("127.0.0.1", origin))
        near.setblocking(False)
        for sock in (near, far):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = Splice(loop, near, far), Splice(loop, far, near)
        up.partner, down.partner = down, up


def relay_main(mode: str, port: int, origin: int) -> None:
    if mode == "splice":
        uvloop.run(serve_splice(port, origin))
    else:
        uvloop.run(serve_transports(port, origin, Pipe if mode == "protocol" else Buffered))


def measure(mode: str, origin_port: int, seconds: int) -> dict[str, float]:
    from run import cpu_seconds, wrk
    from servers import PROXY_CPU, free_port, pinned, wait_port

    port = free_port()
    proc = subprocess.Popen(pinned(PROXY_CPU, [sys.executable, __file__, "--relay", mode,
                                               str(port), str(origin_port)]))
    try:
        wait_port(port)
        wrk(f"http://127.0.0.1:{port}/big", 50, 1)
        before, started = cpu_seconds(proc.pid), time.monotonic()
        result = wrk(f"http://127.0.0.1:{port}/big", 50, seconds)
        cores = (cpu_seconds(proc.pid) - before) / (time.monotonic() - started)
    finally:
        proc.terminate()
        proc.wait()
    return {"mib_s": result["mib_s"], "cores": cores,
            "per_core": result["mib_s"] / cores if cores else 0.0}


def main() -> int:
    from servers import start_origin

    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    work = Path(tempfile.mkdtemp(prefix="portico-copies-"))
    origin = start_origin(work)
    modes = ("protocol", "buffered", "splice")
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    try:
        for _ in range(rounds):
            for mode in modes:
                runs[mode].append(measure(mode, origin.port, seconds))
    finally:
        origin.stop()
    print(f"1 MiB GETs through a byte relay, wrk -c50 -d{seconds}s, median of {rounds} rounds")
    print(f"{'mode':<10} {'MiB/s':>8} {'relay cores':>12} {'MiB/s per core':>15}")
    for mode in modes:
        med = {key: statistics.median(run[key] for run in runs[mode]) for key in runs[mode][0]}
        print(f"{mode:<10} {med['mib_s']:>8.0f} {med['cores']:>12.2f} {med['per_core']:>15.0f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--relay":
        relay_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(main())
