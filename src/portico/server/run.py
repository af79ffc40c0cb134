"""Bring a checked config (a RunPlan) to life: start apps, open listeners, serve, drain."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import portico
from portico import memory
from portico.admin import runtime
from portico.admin.control import control_path, remove_control, serve_control
from portico.config.listen import parse_listen
from portico.config.plan import RunPlan, ServingPlan
from portico.config.prepare import check_certificates
from portico.config.provision import build_cert_store, build_gateway
from portico.errors import ConfigError
from portico.proxy.gateway import Gateway
from portico.server.drain import drain, open_counts
from portico.server.live import Live
from portico.server.loops import loop_factory
from portico.server.protocol import ClientConnection
from portico.server.workers import WorkerPool, worker_count
from portico.supervisor.logs import Echo
from portico.supervisor.supervisor import Supervisor

if TYPE_CHECKING:
    from portico.tls.store import CertStore

Announce = Callable[[str], None]


@dataclass(frozen=True)
class RunContext:
    """How a run talks to the terminal, and where it checks configs again."""

    announce: Announce
    echo: Echo | None = None  # app output to the console, with the app's name
    # True in the process portico run handed over to (server/main.py): a reload or a
    # changed certificate is checked by a child (config/prepare.py), not here.
    lean: bool = False


def run(plan: RunPlan, ctx: RunContext) -> int:
    name, factory = loop_factory()
    ctx.announce(f"event loop: {name}")
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(serve(plan, ctx))


async def serve(run_plan: RunPlan, ctx: RunContext) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()  # SIGTERM or SIGINT: drain, then stop
    hurry = asyncio.Event()  # SIGINT while draining: cut what is still open, stop now

    def on_signal(sig: int) -> None:
        if not stop.is_set():
            stop.set()
        elif sig == signal.SIGINT and not hurry.is_set():
            hurry.set()
            ctx.announce("stopping now: closing the connections still open, SIGKILL to the apps")

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # Windows' proactor loop
            signal.signal(sig, lambda s, _: loop.call_soon_threadsafe(on_signal, s))

    plan = run_plan.serving
    runtime_dir = runtime.prepare(runtime.runtime_dir())
    key = runtime.instance_key(run_plan.config_file)
    log_dir = run_plan.state_dir / "logs" / key  # one directory per config, as the socket
    certs = build_cert_store(plan, ctx.announce, run_plan.cert_facts)
    supervisor = Supervisor(
        run_plan.apps, run_plan.base_dir, log_dir, loop, ctx.announce, ctx.echo,
    )
    gateway = build_gateway(plan, loop, supervisor.gates)
    for route in gateway.routes.routes:
        upstream = route.upstream
        if upstream.tls is not None and upstream.tls.verify_mode == ssl.CERT_NONE:
            ctx.announce(f"warning: route {route.label}: verify = false, the certificate of "
                         f"{upstream.label} is not checked")
    count = worker_count(run_plan.workers)
    if count > 1 and os.name == "nt":
        ctx.announce(f"warning: workers = {count} needs descriptor passing (POSIX); "
                     "running one process")
        count = 1
    workers = (
        WorkerPool(plan, run_plan.listen, count, supervisor.gates)
        if count > 1 else None
    )
    live = Live(run_plan, gateway, certs, workers, supervisor.gates, ctx.announce, ctx.lean)
    control_file = control_path(runtime_dir, run_plan.config_file)
    control: asyncio.Server | None = None
    record: runtime.Instance | None = None
    reloader: asyncio.Task[None] | None = None
    hurrier = loop.create_task(_hurry_when(hurry, live, workers, supervisor))
    stopped = False  # the stop went as planned (no error): say so at the end
    try:
        # Apps come up before any listener opens; a stop signal cuts their start short.
        if not await _unless_stopped(supervisor.start_all(), stop):
            ctx.announce("stopping: the apps were still starting")
            stopped = True
            return 0
        if workers is None:
            servers = await _listen(run_plan, live, ctx.announce, certs)
            addresses = [(scheme, sock.getsockname()) for scheme, server in servers
                         for sock in server.sockets]
        else:
            await workers.start()
            addresses = workers.addresses()
        listening = [_url(scheme, address) for scheme, address in addresses]
        if workers is not None:
            for url in listening:
                ctx.announce(f"listening on {url} ({len(workers.workers)} workers)")
        record = runtime.Instance(
            key, os.getpid(), str(run_plan.config_file) if run_plan.config_file else None,
            listening, round(time.time(), 3), str(control_file), str(log_dir),
        )
        control = await serve_control(
            control_file,
            lambda: status_snapshot(live.run.serving, live.gateway, supervisor, listening,
                                    live.certs, workers, record),
        )
        runtime.write_record(runtime_dir, record)
        if certs is not None:
            certs.warn_expiring()
            reloader = loop.create_task(watch_certificates(certs, plan.tls_reload_interval,
                                                           workers, in_process=not ctx.lean))
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, live.start_reload)
        gateway.start_clock()
        ctx.announce(f"ready: {len(listening)} listeners, {len(gateway.routes.routes)} routes, "
                     f"{len(run_plan.apps)} apps, request path "
                     + ("compiled" if portico.compiled() else "pure Python"))
        memory.settle()
        await stop.wait()
        await live.reload_done()
        timeout = live.run.serving.server.drain_timeout
        _, requests = await _open_counts(live, workers)
        ctx.announce(_stopping_line(requests, timeout))
        if workers is None:
            left = await drain(live.gateway, [server for _, server in servers], timeout,
                               cut=hurry)
            if left and not hurry.is_set():
                ctx.announce(f"drain_timeout ({timeout:g}s) reached: closed {left} "
                             "connections still open")
        else:
            await workers.stop(timeout)
            await drain(live.gateway, [], 0)
        await live.settled()
        stopped = True
        return 0
    finally:
        if reloader is not None:
            reloader.cancel()
        if record is not None:
            runtime.remove_record(runtime_dir, record.key, record.pid)
        if control is not None:
            control.close()
            remove_control(control_file)
        if workers is not None:
            await workers.stop(plan.server.drain_timeout)  # if start-up failed half-way
        await supervisor.stop_all()
        hurrier.cancel()
        if stopped:
            ctx.announce("stopped")


async def watch_certificates(
    certs: CertStore, interval: float, workers: WorkerPool | None, in_process: bool
) -> None:
    """Changed certificate files are checked (config/prepare.py) and swapped in here;
    the workers swap in what passed."""
    while True:
        await asyncio.sleep(interval)
        changed = certs.changed()
        if not changed:
            continue
        indices = list(changed)
        try:
            verdicts = await check_certificates([certs.loaded[i].source for i in indices],
                                                in_process)
        except ConfigError as exc:  # the checker itself failed: try again next round
            certs.log(f"tls: could not check the changed certificates: {exc}")
            continue
        swapped = certs.reload(indices, dict(zip(indices, verdicts, strict=True)), changed)
        if swapped and workers is not None:
            workers.broadcast({"tls_reload": swapped})


def _stopping_line(requests: int, timeout: float) -> str:
    if not requests:
        return "stopping: no open requests"
    plural = "" if requests == 1 else "s"
    return (f"stopping: draining {requests} open request{plural} for up to {timeout:g}s "
            "(Ctrl-C again to stop now)")


async def _unless_stopped(starting: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run ``starting`` unless ``stop`` is set first (then cancel it); True if it ran."""
    task = asyncio.ensure_future(starting)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()  # its error, if it failed
    return True


async def _hurry_when(
    hurry: asyncio.Event, live: Live, workers: WorkerPool | None, supervisor: Supervisor
) -> None:
    """A second Ctrl-C: cut every drain (the gateways and workers a reload replaced
    too) and SIGKILL the apps; the stop reaps them."""
    await hurry.wait()
    live.cut()
    if workers is not None:
        workers.cut()
    supervisor.kill_all()


async def _open_counts(live: Live, workers: WorkerPool | None) -> tuple[int, int]:
    """(client connections, requests in flight), summed over the workers and over what
    a reload replaced and still drains; a worker that does not answer in time counts
    as none."""
    counts = [open_counts(gateway) for gateway in live.draining()]
    if workers is None:
        counts.append(open_counts(live.gateway))
    else:
        counts += [(c["connections"], c["requests"])
                   for c in await workers.counts(retiring=True) if c is not None]
    return sum(c for c, _ in counts), sum(r for _, r in counts)


async def status_snapshot(
    plan: ServingPlan,
    gateway: Gateway,
    supervisor: Supervisor,
    listening: list[str],
    certs: CertStore | None,
    workers: WorkerPool | None = None,
    about: runtime.Instance | None = None,
) -> dict[str, Any]:
    routes = []
    for route, spec in zip(gateway.routes.routes, plan.routes, strict=True):
        gate = gateway.policies.routes[route.index].app
        routes.append({
            "route": route.label,
            "upstream": f"{route.upstream.scheme}://{route.upstream.label}"
                        f"{route.upstream.base_path.decode('latin-1')}",
            "app": spec.app,
            "state": str(gate.state) if gate else None,
            "path": "preserved" if route.preserve_path else "prefix stripped",
        })
    if workers is None:
        connections, requests = open_counts(gateway)
        worker_rows: list[dict[str, Any]] = []
    else:
        worker_rows = await workers.status()
        connections = sum(row["connections"] or 0 for row in worker_rows)
        requests = sum(row["requests"] or 0 for row in worker_rows)
    return {
        "pid": os.getpid(),
        "listen": listening,
        "connections": connections,  # summed over the workers
        "requests": requests,  # in flight now
        "config": about.config if about else None,
        "started": about.started if about else None,
        "logs": about.logs if about else None,
        "workers": worker_rows,
        "apps": supervisor.status(),
        "routes": routes,
        "certificates": certs.status() if certs else [],
    }


def _url(scheme: str, address: Any) -> str:
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    return f"{scheme}://{host}:{address[1]}"


async def _listen(
    run_plan: RunPlan, live: Live, announce: Announce, certs: CertStore | None
) -> list[tuple[str, asyncio.Server]]:
    gateway = live.gateway
    loop = gateway.loop
    servers: list[tuple[str, asyncio.Server]] = []
    for url in run_plan.listen:
        scheme, host, port = parse_listen(url)
        tls = certs.listener if scheme == "https" and certs is not None else None
        label = scheme.encode("ascii")
        server = await loop.create_server(
            lambda label=label: ClientConnection(live.gateway, label),  # reload: the new one
            host,
            port,
            backlog=1024,
            reuse_address=True,
            ssl=tls,
            ssl_handshake_timeout=run_plan.serving.server.head_timeout if tls else None,
        )
        for sock in server.sockets:
            announce(f"listening on {_url(scheme, sock.getsockname())}")
        if scheme == "https" and gateway.https_port == 443:
            gateway.https_port = server.sockets[0].getsockname()[1]
        servers.append((scheme, server))
    for route in gateway.routes.routes:
        announce(f"route {route.label} -> {route.upstream.scheme}://"
                 f"{route.upstream.authority.decode()}{route.upstream.base_path.decode()}")
    return servers
