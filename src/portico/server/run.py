"""Bring a config to life: start apps, open listeners, serve, drain on a signal."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portico.admin.control import control_path, remove_control, serve_control
from portico.config.compile import build_gateway
from portico.config.schema import Config, parse_listen
from portico.proxy.gateway import Gateway
from portico.proxy.route_policy import RoutePolicy
from portico.server.loops import loop_factory
from portico.server.protocol import ClientConnection
from portico.supervisor.commands import assign_ports
from portico.supervisor.logs import Echo
from portico.supervisor.supervisor import Supervisor

Announce = Callable[[str], None]


@dataclass(frozen=True)
class RunContext:
    """Where a run reads and writes, and how it talks to the terminal."""

    base_dir: Path  # relative paths in the config are read from here
    state_dir: Path  # app logs, the control socket, generated certificates
    config_file: Path | None  # None: the built-in default
    announce: Announce
    echo: Echo | None = None  # app output to the console, with the app's name


def run(config: Config, ctx: RunContext) -> int:
    name, factory = loop_factory()
    ctx.announce(f"event loop: {name}")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(config, ctx))


async def serve(config: Config, ctx: RunContext) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows' proactor loop
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))

    config = assign_ports(config)
    supervisor = Supervisor(
        config.app, ctx.base_dir, ctx.state_dir / "logs", loop, ctx.announce, ctx.echo
    )
    control_file = control_path(ctx.state_dir, ctx.config_file)
    control: asyncio.Server | None = None
    try:
        await supervisor.start_all()  # apps come up before any listener opens
        gateway = build_gateway(config, loop, supervisor.gates)
        servers = await _listen(config, gateway, ctx.announce)
        listening = [_url(sock.getsockname()) for server in servers for sock in server.sockets]
        control = await serve_control(
            control_file, lambda: status_snapshot(config, gateway, supervisor, listening)
        )
        gateway.start_clock()
        gc.collect()
        gc.freeze()  # start-up objects never need scanning again
        await stop.wait()
        ctx.announce("stopping: draining in-flight requests")
        await _drain(gateway, servers, config.server.drain_timeout)
    finally:
        if control is not None:
            control.close()
            remove_control(control_file)
        await supervisor.stop_all()
    ctx.announce("stopped")
    return 0


def status_snapshot(
    config: Config, gateway: Gateway, supervisor: Supervisor, listening: list[str]
) -> dict[str, Any]:
    routes = []
    for route, spec in zip(gateway.routes.routes, config.route, strict=True):
        gate = route.policy.app if isinstance(route.policy, RoutePolicy) else None
        routes.append({
            "route": route.label,
            "upstream": f"{route.upstream.scheme}://{route.upstream.label}"
                        f"{route.upstream.base_path.decode('latin-1')}",
            "app": spec.app,
            "state": str(gate.state) if gate else None,
            "path": "preserved" if route.preserve_path else "prefix stripped",
        })
    return {
        "pid": os.getpid(),
        "listen": listening,
        "connections": len(gateway.connections),
        "apps": supervisor.status(),
        "routes": routes,
    }


def _url(address: Any) -> str:
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    return f"http://{host}:{address[1]}"


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
            announce(f"listening on {_url(sock.getsockname())}")
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
