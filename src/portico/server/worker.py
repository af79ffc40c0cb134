"""One worker process of ``workers = N`` (started by server/workers.py, never by hand).

``python -m portico.server.worker CHANNEL_FD SCHEME:FD[,SCHEME:FD...]``: serve
the inherited listening sockets with the plan the main process sends (and the
next one, at a reload, in place: server/reload.py), keep each app's state as
the main process reports it, swap a certificate in when the main process has
checked the new file, and say how busy it is when asked (server/channel.py).

A worker imports the request path and nothing of the config schema, the CLI
or ``cryptography`` (config/plan.py says why); tests/integration/test_workers.py
holds it to that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys

from portico import memory
from portico.errors import ConfigError
from portico.server import backend_drain, channel
from portico.server.health import apply_verdict
from portico.server.listeners import serve
from portico.server.loops import loop_factory
from portico.server.reload import Runtime
from portico.upstream.availability import Availability, BackendState
from portico.upstream.backend import Key


def _die_with_parent() -> None:
    """SIGTERM when the main process dies (Linux); a worker never outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _say(text: str) -> None:
    print(f"portico worker {os.getpid()}: {text}", file=sys.stderr, flush=True)


async def serve_worker(channel_fd: int, listen: list[tuple[str, int]]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    for sig in (signal.SIGINT, signal.SIGHUP):  # the main process decides
        loop.add_signal_handler(sig, lambda: None)
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=channel_fd),
                                                   limit=channel.PLAN_LINE_LIMIT)
    first = channel.decode(await reader.readline())
    assert isinstance(first, channel.Serve), first
    plan = first.plan
    gates = {name: Availability(name, loop, wait) for name, wait in plan.app_waits.items()}
    runtime = Runtime(loop, gates, _say)
    drained: set[Key] = set()  # by the admin API, as the main process says
    backend_drain.follow(runtime, drained)
    sent_gauges: list[tuple[int, int] | None] = [None]  # the first tick always reports

    def send_metrics(rows: dict[str, list[int]]) -> None:  # each tick, [metrics] on
        gauges = runtime.counts()
        if rows or gauges != sent_gauges[0]:
            sent_gauges[0] = gauges
            writer.write(channel.encode(channel.MetricsDelta(rows, *gauges)))

    runtime.metrics_send = send_metrics
    runtime.set_https_port(first.https_port)
    gateway = runtime.open(runtime.build(plan))
    servers = await serve(runtime, [(scheme, socket.socket(fileno=fd)) for scheme, fd in listen],
                          plan.server.client_timeouts.head_timeout)

    def answer(message: channel.Message) -> None:
        writer.write(channel.encode(message))

    def handle(message: channel.Message) -> None:
        if isinstance(message, channel.Serve):  # a reload
            for name, wait in message.plan.app_waits.items():  # an app a reload added
                gates.setdefault(name, Availability(name, loop, wait)).wait_timeout = wait
            try:
                runtime.swap(runtime.build(message.plan))
            except (ConfigError, OSError) as exc:  # the main process built it: rare
                answer(channel.Serving(message.generation, str(exc)))
            else:
                answer(channel.Serving(message.generation))
        elif isinstance(message, channel.AppChanged):  # of an app a reload adds: before Serve
            gate = gates.setdefault(message.app, Availability(message.app, loop, 5.0))
            gate.set(BackendState(message.state))
        elif isinstance(message, channel.BackendDrain):
            backend_drain.handle(runtime, drained, message)
        elif isinstance(message, channel.BackendHealth):
            apply_verdict(runtime.serving.pool, message)
        elif isinstance(message, channel.ReloadCertificates):
            if runtime.certs is not None:
                runtime.certs.reload(only=message.indices)
        elif isinstance(message, channel.CountQuery):
            connections, requests = runtime.counts()
            answer(channel.Counts(message.seq, connections, requests))
        elif isinstance(message, channel.Cut):
            runtime.cut()
            stop.set()

    async def follow_main() -> None:
        try:
            while line := await reader.readline():
                handle(channel.decode(line))
        except (OSError, ValueError) as exc:  # ValueError: a ChannelError
            _say(f"the channel to the main process broke: {exc}")
        stop.set()  # the main process is gone: drain and exit

    follower = loop.create_task(follow_main())
    gateway.start_clock()
    answer(channel.Serving(first.generation))
    memory.settle()
    await stop.wait()

    await runtime.stop(servers)
    if runtime.gateway is not None and runtime.gateway.metrics is not None:
        runtime.gateway.metrics.flush()  # the last tick's counts
        with contextlib.suppress(OSError):
            await writer.drain()
    follower.cancel()
    return 0


def main() -> int:
    _die_with_parent()
    channel_fd = int(sys.argv[1])
    listen = [(scheme, int(fd)) for scheme, fd in
              (item.split(":") for item in sys.argv[2].split(","))]
    _, factory = loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve_worker(channel_fd, listen))


if __name__ == "__main__":
    sys.exit(main())
