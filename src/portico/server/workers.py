"""``workers = N``: N proxy processes behind one set of listening addresses.

The main process keeps everything that must exist once: the apps and their
supervisor, the control socket, and the listening sockets. It binds each
listener N times with ``SO_REUSEPORT`` (the kernel spreads new connections
over the N sockets) or, where that option is missing, once, shared by all.
Each worker gets its sockets as inherited descriptors plus one end of a
socket pair, over which the main process sends newline-delimited JSON:

    main -> worker   the ServingPlan (config/plan.py)        once, first
                     {"app": NAME, "state": STATE}            on every change
                     {"tls_reload": [INDEX, ...]}             certificates the main checked
                     {"retire": true}                         a reload replaced it: drain
                     {"count": SEQ}                           how busy are you? (status)
                     {"cut": true}                            stop draining now (Ctrl-C twice)
    worker -> main   {"ready": true}                          once, when serving
                     {"count": SEQ, "connections": N, "requests": M}   the answer

A worker that dies is started again (after a pause that doubles up to 10 s);
a reload starts a new set and retires the old one (server/live.py); on
SIGTERM the workers drain first and the apps stop after them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from itertools import count as counter
from typing import Any

from portico.config.listen import parse_listen
from portico.config.plan import ServingPlan
from portico.upstream.availability import Availability, BackendState

RESTART_DELAY_MAX = 10.0
COUNT_TIMEOUT = 0.5  # a worker too busy to say how busy it is counts as unknown
_sequence = counter(1)


class WorkerStartError(Exception):
    """A worker exited, or stayed silent, before it served."""


def worker_count(setting: int | str) -> int:
    """``"auto"``: one per core this process may run on."""
    if setting == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    return int(setting)


def bind_listeners(listen: list[str], count: int) -> list[tuple[str, list[socket.socket]]]:
    """Per listen URL, ``count`` SO_REUSEPORT sockets on one address (or one shared)."""
    reuse_port = hasattr(socket, "SO_REUSEPORT")
    bound: list[tuple[str, list[socket.socket]]] = []
    for url in listen:
        scheme, host, port = parse_listen(url)
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = info[0]
        sockets: list[socket.socket] = []
        for _ in range(count if reuse_port else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # Port 0 picks a free port once; the other sockets join it.
            sock.bind(sockets[0].getsockname() if sockets else address)
            sock.listen(1024)
            sock.set_inheritable(True)
            sockets.append(sock)
        bound.append((scheme, sockets))
    return bound


class Worker:
    """One worker process, started again whenever it dies unasked."""

    def __init__(self, index: int, pool: WorkerPool, welcome: bytes) -> None:
        self.index = index
        self.pool = pool
        self.welcome = welcome  # the plan this worker serves, as its first line
        self.retired = False  # replaced by a reload: draining, never started again
        self.process: asyncio.subprocess.Process | None = None
        self.channel: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.starts = 0
        self._reader: asyncio.Task[None] | None = None
        self._counts: dict[int, asyncio.Future[dict[str, Any]]] = {}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def fds(self) -> list[int]:
        mine = []
        for _, sockets in self.pool.listeners:
            sock = sockets[self.index] if len(sockets) > 1 else sockets[0]
            mine.append(sock.fileno())
        return mine

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        theirs.set_inheritable(True)
        fds = self.fds()
        listen = ",".join(f"{scheme}:{fd}" for (scheme, _), fd in
                          zip(self.pool.listeners, fds, strict=True))
        self.ready.clear()
        self.starts += 1
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "portico.server.worker", str(theirs.fileno()), listen,
            pass_fds=[theirs.fileno(), *fds],
            start_new_session=False,
        )
        theirs.close()
        reader, channel = await asyncio.open_connection(sock=ours)
        self.channel = channel
        channel.write(self.welcome)
        for name, gate in self.pool.gates.items():
            self.send({"app": name, "state": str(gate.state)})
        self._reader = asyncio.get_running_loop().create_task(self._listen(reader, channel))

    async def wait_ready(self, timeout: float) -> None:
        """Until the worker says ready; WorkerStartError if it exits or takes too long."""
        assert self.process is not None
        ready = asyncio.ensure_future(self.ready.wait())
        exited = asyncio.ensure_future(self.process.wait())
        await asyncio.wait({ready, exited}, timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()
        if not self.ready.is_set():
            code = self.process.returncode
            why = f"exited with {code}" if code is not None else f"was not ready in {timeout:g}s"
            raise WorkerStartError(f"worker {self.index} (pid {self.pid}) {why}; "
                                   "see its output above")

    def send(self, message: dict[str, Any]) -> None:
        if self.channel is not None and not self.channel.is_closing():
            self.channel.write(json.dumps(message).encode() + b"\n")

    async def count(self) -> dict[str, Any] | None:
        """This worker's open connections and requests; None if it cannot say in time."""
        if self.channel is None or self.channel.is_closing():
            return None
        seq = next(_sequence)
        waiter = self._counts[seq] = asyncio.get_running_loop().create_future()
        self.send({"count": seq})
        try:
            return await asyncio.wait_for(waiter, COUNT_TIMEOUT)
        except TimeoutError:
            return None
        finally:
            self._counts.pop(seq, None)

    async def _listen(self, reader: asyncio.StreamReader, channel: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.strip() == b'{"ready": true}':
                    self.ready.set()
                    continue
                message = json.loads(line)
                waiter = self._counts.pop(message.get("count", 0), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
        except (OSError, ValueError):
            pass  # the worker died with bytes unread: its watcher reports and restarts it
        channel.close()  # this process's end of the pair; a restart makes a new one
        if self.channel is channel:
            self.channel = None


class WorkerPool:
    """The main process's side: bind, start, watch, signal and stop the workers."""

    def __init__(
        self, plan: ServingPlan, listen: list[str], count: int, gates: dict[str, Availability]
    ) -> None:
        welcome = plan.to_json().encode() + b"\n"
        self.gates = gates
        self.listeners = bind_listeners(listen, count)
        self.workers = [Worker(i, self, welcome) for i in range(count)]
        self.stopping = False
        self._watchers: dict[Worker, asyncio.Task[None]] = {}
        self._retiring: dict[asyncio.Task[None], Worker] = {}  # a reload replaced: draining
        for gate in gates.values():
            gate.listeners.append(self._app_changed)

    def addresses(self) -> list[tuple[str, Any]]:
        return [(scheme, sockets[0].getsockname()) for scheme, sockets in self.listeners]

    async def start(self, timeout: float = 30.0) -> None:
        for worker in self.workers:
            await worker.start()
        for worker in self.workers:
            await worker.wait_ready(timeout)
        self._watch_all(self.workers)

    def _watch_all(self, workers: list[Worker]) -> None:
        for worker in workers:
            self._watchers[worker] = asyncio.ensure_future(self._watch(worker))

    async def rotate(self, plan: ServingPlan, drain_timeout: float, timeout: float = 30.0) -> None:
        """A reload: start a new set of workers with ``plan``; once every one is ready the
        old set drains and exits. WorkerStartError (the old set serving on) if one fails."""
        welcome = plan.to_json().encode() + b"\n"
        fresh = [Worker(worker.index, self, welcome) for worker in self.workers]
        try:
            for worker in fresh:
                await worker.start()
            for worker in fresh:
                await worker.wait_ready(timeout)
        except WorkerStartError:
            for worker in fresh:
                worker.retired = True
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.kill()
                    await worker.process.wait()
            raise
        old, self.workers = self.workers, fresh
        self._watch_all(fresh)
        for worker in old:
            worker.retired = True
            watcher = self._watchers.pop(worker, None)
            if watcher is not None:
                watcher.cancel()
            task = asyncio.ensure_future(self._retire(worker, drain_timeout))
            self._retiring[task] = worker
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._retiring.pop(task, None)

    async def _retire(self, worker: Worker, drain_timeout: float) -> None:
        process = worker.process
        if process is None or process.returncode is not None:
            return
        if worker.channel is not None and not worker.channel.is_closing():
            worker.send({"retire": True})  # drains like SIGTERM, idle connections gently
        else:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), drain_timeout + 5)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def _watch(self, worker: Worker) -> None:
        delay = 0.25
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            if self.stopping or worker.retired:
                return
            print(f"portico: worker {worker.index} (pid {worker.pid}) exited with {code}; "
                  f"starting it again in {delay:g}s", file=sys.stderr, flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)
            if self.stopping or worker.retired:
                return
            await worker.start()

    def _app_changed(self, name: str, state: BackendState) -> None:
        self.broadcast({"app": name, "state": str(state)})

    def broadcast(self, message: dict[str, Any]) -> None:
        for worker in self.workers:
            worker.send(message)

    def signal(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signum)

    async def stop(self, drain_timeout: float) -> None:
        """SIGTERM: each worker drains and exits; SIGKILL for one that outlives the drain."""
        if self.stopping:
            return
        self.stopping = True
        for watcher in self._watchers.values():
            watcher.cancel()
        self.signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                await asyncio.wait_for(worker.process.wait(), drain_timeout + 5)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
        if self._retiring:  # workers a reload replaced, still draining
            await asyncio.gather(*self._retiring, return_exceptions=True)
        for _, sockets in self.listeners:
            for sock in sockets:
                sock.close()

    def cut(self) -> None:
        """Stop draining now: each worker, and each a reload retired, closes what is
        still open and exits."""
        for watcher in self._watchers.values():
            watcher.cancel()  # stopping: none is started again
        self.broadcast({"cut": True})
        for worker in self._retiring.values():
            worker.send({"cut": True})

    async def counts(self, retiring: bool = False) -> list[dict[str, Any] | None]:
        """Per worker (and, with ``retiring``, per worker a reload replaced that still
        drains), its open connections and requests (None: it did not answer)."""
        workers = self.workers + (list(self._retiring.values()) if retiring else [])
        return list(await asyncio.gather(*(worker.count() for worker in workers)))

    async def status(self) -> list[dict[str, Any]]:
        rows = []
        for worker, counts in zip(self.workers, await self.counts(), strict=True):
            rows.append({"index": worker.index, "pid": worker.pid, "starts": worker.starts,
                         "connections": counts["connections"] if counts else None,
                         "requests": counts["requests"] if counts else None})
        return rows
