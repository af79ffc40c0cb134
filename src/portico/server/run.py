"""Bring a config to life: start apps, open listeners, serve, drain on a signal."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from portico.config.compile import build_gateway
from portico.config.schema import Config, parse_listen
from portico.proxy.gateway import Gateway
from portico.server.loops import loop_factory
from portico.server.protocol import ClientConnection
from portico.supervisor.process import AppProcess

Announce = Callable[[str], None]


def run(config: Config, base_dir: Path, state_dir: Path, announce: Announce) -> int:
    name, factory = loop_factory()
    announce(f"event loop: {name}")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(config, base_dir, state_dir, announce))


async def serve(config: Config, base_dir: Path, state_dir: Path, announce: Announce) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows' proactor loop
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))

    apps = [AppProcess(app, base_dir, state_dir / "logs") for app in config.app]
    try:
        for app in apps:  # apps come up before any listener opens
            await app.start()
            announce(f"app {app.app.name}: pid {app.pid}, listening on {app.app.bind}")
        gateway = build_gateway(config, loop)
        servers = await _listen(config, gateway, announce)
        gateway.start_clock()
        gc.collect()
        gc.freeze()  # start-up objects never need scanning again
        await stop.wait()
        announce("stopping: draining in-flight requests")
        await _drain(gateway, servers, config.server.drain_timeout)
    finally:
        for app in reversed(apps):
            app.stop()
    announce("stopped")
    return 0


async def _listen(
    config: Config, gateway: Gateway, announce: Announce
) -> list[asyncio.base_events.Server]:
    loop = gateway.loop
    servers = []
    for url in config.server.listen:
        host, port = parse_listen(url)
        server = await loop.create_server(
            lambda: ClientConnection(gateway, b"http"),
            host,
            port,
            backlog=1024,
            reuse_address=True,
        )
        for sock in server.sockets:
            address = sock.getsockname()
            shown = f"[{address[0]}]" if ":" in address[0] else address[0]
            announce(f"listening on http://{shown}:{address[1]}")
        servers.append(server)
    for route in gateway.routes.routes:
        announce(f"route {route.label} -> {route.upstream.scheme}://"
                 f"{route.upstream.authority.decode()}{route.upstream.base_path.decode()}")
    return servers


async def _drain(
    gateway: Gateway, servers: list[asyncio.base_events.Server], timeout: float
) -> None:
    for server in servers:
        server.close()
    gateway.drain()
    deadline = gateway.loop.time() + timeout
    while gateway.connections and gateway.loop.time() < deadline:
        await asyncio.sleep(0.05)
    gateway.abort_all()
    gateway.stop_clock()
    gateway.access_log.close()
    sys.stdout.flush()
