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
from portico.admin.control import control_path, remove_control, serve_http
from portico.admin.facade import AdminContext, admin_state_dir
from portico.admin.server import AdminServers, serve_admin
from portico.config.plan import RunPlan, ServingPlan
from portico.config.prepare import check_certificates
from portico.doctor.token import publish_token
from portico.errors import ConfigError
from portico.server.backend_drain import Drains
from portico.server.health import backend_rows, start_probes
from portico.server.listeners import InProcess, Listeners, bind, https_port
from portico.server.loops import loop_factory
from portico.server.metrics_scrape import metrics_action, metrics_text
from portico.server.reload import Reloader, Runtime
from portico.server.workers import WorkerPool, worker_count
from portico.supervisor.logs import Echo
from portico.supervisor.process import AppStartError
from portico.supervisor.supervisor import Supervisor, UnknownApp

if TYPE_CHECKING:
    from portico.proxy.gateway import Gateway
    from portico.tls.store import CertStore
    from portico.upstream.probes import Prober

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
    stop, hurry = _stop_signals(loop, ctx.announce)
    plan = run_plan.serving
    runtime_dir = runtime.prepare(runtime.runtime_dir())
    key = runtime.instance_key(run_plan.config_file)
    log_dir = run_plan.state_dir / "logs" / key  # one directory per config, as the socket
    publish_token(runtime_dir, key)  # before any app starts: they inherit it (doctor/)
    supervisor = Supervisor(
        run_plan.apps, run_plan.base_dir, log_dir, loop, ctx.announce, ctx.echo,
    )
    state = Runtime(loop, supervisor.gates, ctx.announce)
    gateway = state.open(state.build(plan, run_plan.cert_facts))
    for route in gateway.routes.routes:
        backend = route.backend
        if backend.tls is not None and backend.tls.verify_mode == ssl.CERT_NONE:
            ctx.announce(f"warning: route {route.label}: verify = false, the certificate of "
                         f"{backend.label} is not checked")
    count = worker_count(run_plan.workers)
    if count > 1 and os.name == "nt":
        ctx.announce(f"warning: workers = {count} needs descriptor passing (POSIX); "
                     "running one process")
        count = 1
    control_file = control_path(runtime_dir, run_plan.config_file)
    control: AdminServers | None = None
    metrics_server: asyncio.Server | None = None
    record: runtime.Instance | None = None
    watcher: asyncio.Task[None] | None = None
    prober: Prober | None = None
    listeners: Listeners | None = None
    hurrier = loop.create_task(_hurry_when(hurry, state, lambda: listeners, supervisor))
    stopped = False  # the stop went as planned (no error): say so at the end
    try:
        # Apps come up before any listener opens; a stop signal cuts their start short.
        if not await _unless_stopped(supervisor.start_all(), stop):
            ctx.announce("stopping: the apps were still starting")
            stopped = True
            return 0
        bound = bind(run_plan.listen, count)
        state.set_https_port(https_port(bound))
        listeners = (
            WorkerPool(state, plan, bound, count, supervisor.gates) if count > 1
            else InProcess(state, bound, plan.server.client_timeouts.head_timeout)
        )
        await listeners.start()
        serving_now = listeners
        if isinstance(listeners, WorkerPool):
            supervisor.gate_listeners.append(listeners.app_changed)

        async def every_process_knows() -> None:  # each worker has read what came before
            await serving_now.counts()

        supervisor.barrier = every_process_knows
        state.supervisor = supervisor
        listening = _announce_listening(listeners, gateway, ctx.announce)
        prober = start_probes(loop, state, listeners)  # active health checks, if any
        drains = Drains(state, listeners)  # the admin API's backend drain/enable
        reloader = Reloader(run_plan, state, listeners, ctx.announce, ctx.lean)
        record = runtime.Instance(
            key, os.getpid(), str(run_plan.config_file) if run_plan.config_file else None,
            listening, round(time.time(), 3), str(control_file), str(log_dir),
        )
        serving = listeners
        state.totals.last_reload_at = time.time()
        scrape = metrics_action(state, listeners, supervisor,
                                lambda: reloader.run.serving.metrics.enabled)
        control = await serve_admin(control_file, AdminContext(
            lambda: status_snapshot(reloader.run.serving, state, supervisor, listening,
                                    serving, record),
            reloader, supervisor, run_plan.admin,
            admin_state_dir(run_plan.state_dir, key), key,
            metrics=metrics_text(state, listeners, supervisor,
                                 lambda: reloader.run.serving.metrics.enabled),
            drains=drains,
        ))
        if control.tcp_url:
            ctx.announce(f"admin API and UI on {control.tcp_url}")
        for note in control.notes:
            ctx.announce(f"admin: {note}")
        if plan.metrics.listen:
            host, _, port = plan.metrics.listen.rpartition(":")
            try:
                metrics_server = await serve_http(host, int(port), scrape)
                ctx.announce(f"metrics on http://{plan.metrics.listen}/metrics")
            except OSError as exc:
                ctx.announce(f"warning: [metrics] listen {plan.metrics.listen}: {exc}; "
                             "/metrics is on the control socket only")
        runtime.write_record(runtime_dir, record)
        if state.certs is not None:
            state.certs.warn_expiring()
            watcher = loop.create_task(watch_certificates(
                state.certs, plan.tls_reload_interval, listeners, in_process=not ctx.lean))
        with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
            loop.add_signal_handler(signal.SIGHUP, reloader.start_reload)
            loop.add_signal_handler(signal.SIGUSR2, restart_every_app, supervisor, loop)
        gateway.start_clock()
        ctx.announce(f"ready: {len(listening)} listeners, {len(gateway.routes.routes)} routes, "
                     f"{len(run_plan.apps)} apps, request path "
                     + ("compiled" if portico.compiled() else "pure Python"))
        memory.settle()
        await stop.wait()
        await reloader.reload_done()
        timeout = reloader.run.serving.server.drain_timeout
        requests = sum(counts[1] for counts in await listeners.counts() if counts is not None)
        ctx.announce(_stopping_line(requests, timeout))
        left = await listeners.stop(timeout)
        if left and not hurry.is_set():
            ctx.announce(f"drain_timeout ({timeout:g}s) reached: closed {left} "
                         "connections still open")
        stopped = True
        return 0
    finally:
        if watcher is not None:
            watcher.cancel()
        if prober is not None:
            prober.stop()
        if record is not None:
            runtime.remove_record(runtime_dir, record.key, record.pid)
        if control is not None:
            control.close()
            remove_control(control_file)
        if metrics_server is not None:
            metrics_server.close()
        if listeners is not None:
            await listeners.stop(plan.server.drain_timeout)  # if start-up failed half-way
        await supervisor.stop_all()
        hurrier.cancel()
        if stopped:
            ctx.announce("stopped")


def restart_every_app(supervisor: Supervisor, loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR2 (for scripts): a rolling restart of every app, one app after another."""

    async def restart() -> None:
        for name in list(supervisor.plans):
            try:
                await supervisor.restart_app(name)
            except (AppStartError, UnknownApp) as exc:
                supervisor.announce(f"SIGUSR2: {exc}")

    loop.create_task(restart())


def _stop_signals(
    loop: asyncio.AbstractEventLoop, announce: Announce
) -> tuple[asyncio.Event, asyncio.Event]:
    """``stop`` (SIGTERM or SIGINT: drain, then stop) and ``hurry`` (SIGINT while
    draining: cut what is still open, stop now)."""
    stop = asyncio.Event()
    hurry = asyncio.Event()

    def on_signal(sig: int) -> None:
        if not stop.is_set():
            stop.set()
        elif sig == signal.SIGINT and not hurry.is_set():
            hurry.set()
            announce("stopping now: closing the connections still open, SIGKILL to the apps")

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError):  # Windows' proactor loop
            signal.signal(sig, lambda s, _: loop.call_soon_threadsafe(on_signal, s))
    return stop, hurry


def _announce_listening(listeners: Listeners, gateway: Gateway, announce: Announce) -> list[str]:
    """Say where portico listens and where each route goes; the listen URLs."""
    listening = [_url(scheme, address) for scheme, address in listeners.addresses()]
    for url in listening:
        announce(f"listening on {url}{listeners.describe()}")
    for route in gateway.routes.routes:
        announce(f"route {route.label} -> {route.backend.scheme}://"
                 f"{route.backend.authority.decode()}{route.base_path.decode()}")
    return listening


async def watch_certificates(
    certs: CertStore, interval: float, listeners: Listeners, in_process: bool
) -> None:
    """Changed certificate files are checked (config/prepare.py) and swapped in here;
    the workers, if any, swap in what passed."""
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
        if swapped:
            listeners.reload_certificates(swapped)


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
    hurry: asyncio.Event, state: Runtime, listeners: Callable[[], Listeners | None],
    supervisor: Supervisor,
) -> None:
    """A second Ctrl-C: cut every drain (the gateways a reload replaced too, in this
    process and in the workers) and SIGKILL the apps; the stop reaps them."""
    await hurry.wait()
    state.cut()
    serving = listeners()
    if serving is not None:
        serving.cut()
    supervisor.kill_all()


async def status_snapshot(
    plan: ServingPlan,
    state: Runtime,
    supervisor: Supervisor,
    listening: list[str],
    listeners: Listeners,
    about: runtime.Instance | None = None,
) -> dict[str, Any]:
    routes = []
    backends = backend_rows(state.serving)
    for index, (route, spec) in enumerate(zip(state.serving.routes.routes, plan.routes,
                                              strict=True)):
        gate = route.backend.gate
        routes.append({
            "route": route.label,
            "upstream": f"{route.backend.scheme}://{route.backend.label}"
                        f"{route.base_path.decode('latin-1')}",
            "app": spec.app,
            "state": str(gate.state) if gate else None,
            "path": "preserved" if route.preserve_path else "prefix stripped",
            "backends": backends[index],  # server/health.py
        })
    worker_rows = await listeners.status()
    if worker_rows:
        counts = [(row["connections"] or 0, row["requests"] or 0) for row in worker_rows]
    else:
        counts = [c for c in await listeners.counts() if c is not None]
    return {
        "pid": os.getpid(),
        "listen": listening,
        "connections": sum(c for c, _ in counts),  # summed over the workers
        "requests": sum(r for _, r in counts),  # in flight now
        "config": about.config if about else None,
        "started": about.started if about else None,
        "logs": about.logs if about else None,
        "workers": worker_rows,
        "apps": supervisor.status(),
        "routes": routes,
        "certificates": state.certs.status() if state.certs else [],
    }


def _url(scheme: str, address: Any) -> str:
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    return f"{scheme}://{host}:{address[1]}"
