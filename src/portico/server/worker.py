"""One worker process of ``workers = N`` (started by server/workers.py, never by hand).

``python -m portico.server.worker CHANNEL_FD SCHEME:FD[,SCHEME:FD...]``: serve
the inherited listening sockets with the plan the main process sends, keep
each app's state as the main process reports it, and swap a certificate in
when the main process has checked the new file.

A worker imports the request path and nothing of the config schema, the CLI
or ``cryptography`` (config/plan.py says why); tests/integration/test_workers.py
holds it to that.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import sys

from portico import memory
from portico.config.plan import ServingPlan
from portico.config.provision import build_cert_store, build_gateway
from portico.server.drain import RELOAD_IDLE_GRACE, drain, open_counts
from portico.server.loops import loop_factory
from portico.server.protocol import ClientConnection
from portico.upstream.availability import Availability, BackendState

PLAN_LINE_LIMIT = 64 * 2**20


def _die_with_parent() -> None:
    """SIGTERM when the main process dies (Linux); a worker never outlives it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _say(text: str) -> None:
    print(f"portico worker {os.getpid()}: {text}", file=sys.stderr, flush=True)


async def serve_worker(channel_fd: int, listen: list[tuple[str, int]]) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    cut = asyncio.Event()  # the main process says: stop draining now
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    for sig in (signal.SIGINT, signal.SIGHUP):  # the main process decides
        loop.add_signal_handler(sig, lambda: None)
    # The plan is one JSON line; asyncio's default 64 KiB line limit is far too small for
    # a config of a few hundred routes.
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=channel_fd),
                                                   limit=PLAN_LINE_LIMIT)
    plan = ServingPlan.from_json(await reader.readline())

    gates = {name: Availability(name, loop, wait) for name, wait in plan.app_waits.items()}
    certs = build_cert_store(plan, _say)
    gateway = build_gateway(plan, loop, gates)
    servers = []
    tasks: list[asyncio.Task[None]] = []
    for scheme, fd in listen:
        tls = certs.listener if scheme == "https" and certs is not None else None
        label = scheme.encode("ascii")
        server = await loop.create_server(
            lambda label=label: ClientConnection(gateway, label),
            sock=socket.socket(fileno=fd),
            ssl=tls,
            ssl_handshake_timeout=plan.server.head_timeout if tls else None,
        )
        if scheme == "https" and gateway.https_port == 443:
            gateway.https_port = server.sockets[0].getsockname()[1]
        servers.append(server)

    async def follow_main() -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if "app" in message and message["app"] in gates:
                    gates[message["app"]].set(BackendState(message["state"]))
                elif "tls_reload" in message and certs is not None:
                    certs.reload(only=message["tls_reload"])
                elif "count" in message:
                    connections, requests = open_counts(gateway)
                    writer.write(json.dumps({"count": message["count"], "connections":
                                             connections, "requests": requests}).encode() + b"\n")
                elif message.get("cut"):
                    stop.set()
                    cut.set()
                elif message.get("retire"):  # replaced by a reload: drain gently
                    grace[0] = RELOAD_IDLE_GRACE
                    stop.set()
        except OSError:
            pass
        stop.set()  # the main process is gone: drain and exit

    grace = [0.0]  # set by a retire message
    tasks.append(loop.create_task(follow_main()))
    gateway.start_clock()
    writer.write(b'{"ready": true}\n')
    memory.settle()
    await stop.wait()

    await drain(gateway, servers, plan.server.drain_timeout, grace[0], cut)
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
