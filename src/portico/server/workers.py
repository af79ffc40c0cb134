"""``workers = N``: N proxy processes behind one set of listening addresses.

The main process keeps everything that must exist once: the apps and their
supervisor, the control socket, and the listening sockets (server/listeners.py
binds each listener N times with ``SO_REUSEPORT``, or once, shared, where that
option is missing). Each worker gets its sockets as inherited descriptors plus
one end of a socket pair, the channel: typed messages, one JSON line each
(server/channel.py).

A worker that dies is started again (after a pause that doubles up to 10 s)
with the plan in force; a reload sends each worker the new plan and it swaps
in place, as one process does (server/reload.py); on SIGTERM the workers drain
first and the apps stop after them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from itertools import count as counter
from typing import TYPE_CHECKING, Any

from portico.config.plan import ServingPlan
from portico.server import channel
from portico.server.listeners import close
from portico.upstream.availability import Availability, BackendState
from portico.upstream.backend import Key

if TYPE_CHECKING:
    from portico.server.listeners import Bound
    from portico.server.reload import Runtime

RESTART_DELAY_MAX = 10.0
COUNT_TIMEOUT = 0.5  # a worker too busy to say how busy it is counts as unknown
SERVE_TIMEOUT = 30.0  # for a worker to serve a plan, at start or at a reload
_sequence = counter(1)


class WorkerStartError(Exception):
    """A worker exited, stayed silent or could not serve a plan."""


def worker_count(setting: int | str) -> int:
    """``"auto"``: one per core this process may run on."""
    if setting == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    return int(setting)


class Worker:
    """One worker process, started again whenever it dies unasked."""

    def __init__(self, index: int, pool: WorkerPool) -> None:
        self.index = index
        self.pool = pool
        self.process: asyncio.subprocess.Process | None = None
        self.channel: asyncio.StreamWriter | None = None
        self.generation = 0  # of the plan it serves (channel.Serving)
        self.changed = asyncio.Event()  # set on every Serving
        self.error = ""  # why the last Serve failed
        self.starts = 0
        self._reader: asyncio.Task[None] | None = None
        self._counts: dict[int, asyncio.Future[channel.Counts]] = {}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def fds(self) -> list[int]:
        mine = []
        for _, sockets in self.pool.bound:
            sock = sockets[self.index] if len(sockets) > 1 else sockets[0]
            mine.append(sock.fileno())
        return mine

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        fds = self.fds()
        listen = ",".join(f"{scheme}:{fd}" for (scheme, _), fd in
                          zip(self.pool.bound, fds, strict=True))
        self.generation = 0
        self.error = ""
        self.starts += 1
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "portico.server.worker", str(theirs.fileno()), listen,
            pass_fds=[theirs.fileno(), *fds],
            start_new_session=False,
        )
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        self.channel = writer
        self.send(self.pool.serve)  # first: the plan in force
        for name, gate in self.pool.gates.items():
            self.send(channel.AppChanged(name, str(gate.state)))
        for key in self.pool.drained:  # by the admin API (server/backend_drain.py)
            self.send(channel.BackendDrain(*key, True))
        self._reader = asyncio.get_running_loop().create_task(self._listen(reader, writer))

    async def serving(self, generation: int, timeout: float) -> None:
        """Until the worker serves the plan of ``generation``; WorkerStartError if it
        exits, takes too long or cannot."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        exited = asyncio.ensure_future(self.process.wait())
        try:
            while self.generation < generation and not self.error:
                self.changed.clear()
                changed = asyncio.ensure_future(self.changed.wait())
                await asyncio.wait({changed, exited}, timeout=deadline - loop.time(),
                                   return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if exited.done() or loop.time() >= deadline:
                    break
        finally:
            exited.cancel()
        if self.generation >= generation:
            return
        code = self.process.returncode
        why = (f"cannot serve the plan: {self.error}" if self.error else
               f"exited with {code}" if code is not None else f"did not serve in {timeout:g}s")
        raise WorkerStartError(f"worker {self.index} (pid {self.pid}) {why}; "
                               "see its output above")

    def send(self, message: channel.Message) -> None:
        if self.channel is not None and not self.channel.is_closing():
            self.channel.write(channel.encode(message))

    async def count(self) -> tuple[int, int] | None:
        """This worker's open connections and requests; None if it cannot say in time."""
        if self.channel is None or self.channel.is_closing():
            return None
        seq = next(_sequence)
        waiter = self._counts[seq] = asyncio.get_running_loop().create_future()
        self.send(channel.CountQuery(seq))
        try:
            answer = await asyncio.wait_for(waiter, COUNT_TIMEOUT)
        except TimeoutError:
            return None
        finally:
            self._counts.pop(seq, None)
        return answer.connections, answer.requests

    async def _listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                message = channel.decode(line)
                if isinstance(message, channel.Serving):
                    if message.error:
                        self.error = message.error  # it serves the plan before, still
                    else:
                        self.generation = message.generation
                    self.changed.set()
                elif isinstance(message, channel.Counts):
                    waiter = self._counts.pop(message.seq, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
                elif isinstance(message, channel.MetricsDelta):
                    totals = self.pool.runtime.totals
                    totals.add(message.rows)
                    totals.gauges[self.index] = (message.connections, message.requests)
        except (OSError, ValueError):
            pass  # the worker died with bytes unread: its watcher reports and restarts it
        writer.close()  # this process's end of the pair; a restart makes a new one
        if self.channel is writer:
            self.channel = None


class WorkerPool:
    """The main process's side: start, watch, reload, signal and stop the workers."""

    def __init__(
        self, runtime: Runtime, plan: ServingPlan, bound: Bound, count: int,
        gates: dict[str, Availability],
    ) -> None:
        self.runtime = runtime  # the main process's own: built, never serving
        self.serve = channel.Serve(1, runtime.https_port, plan)  # what a (re)start gets
        self.gates = gates
        self.drained: set[Key] = set()  # addresses the admin API drained: server/backend_drain.py's
        self.bound = bound
        for _, sockets in bound:
            for sock in sockets:
                sock.set_inheritable(True)
        self.workers = [Worker(i, self) for i in range(count)]
        self.stopping = False
        self._watchers: dict[Worker, asyncio.Task[None]] = {}
        for gate in gates.values():
            gate.listeners.append(self.app_changed)

    def addresses(self) -> list[tuple[str, Any]]:
        return [(scheme, sockets[0].getsockname()) for scheme, sockets in self.bound]

    def describe(self) -> str:
        return f" ({len(self.workers)} workers)"

    async def start(self, timeout: float = SERVE_TIMEOUT) -> None:
        for worker in self.workers:
            await worker.start()
        for worker in self.workers:
            await worker.serving(self.serve.generation, timeout)
        for worker in self.workers:
            self._watchers[worker] = asyncio.ensure_future(self._watch(worker))

    async def reload(self, plan: ServingPlan, timeout: float = SERVE_TIMEOUT) -> None:
        """Each worker swaps ``plan`` in, in place; WorkerStartError if one could not
        (it is then started again, with the plan in force before)."""
        previous = self.serve
        self.serve = channel.Serve(previous.generation + 1, previous.https_port, plan)
        for worker in self.workers:
            worker.error = ""
        self.broadcast(self.serve)
        failed: list[Worker] = []
        errors: list[str] = []
        for worker in self.workers:
            try:
                await worker.serving(self.serve.generation, timeout)
            except WorkerStartError as exc:
                failed.append(worker)
                errors.append(str(exc))
        if failed:
            self.serve = previous
            for worker in failed:  # its watcher starts it again with ``previous``
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.kill()
            for worker in self.workers:
                if worker not in failed:
                    worker.send(self.serve)  # back to the plan in force
            raise WorkerStartError("; ".join(errors))

    def reload_certificates(self, indices: list[int]) -> None:
        self.broadcast(channel.ReloadCertificates(indices))

    async def _watch(self, worker: Worker) -> None:
        delay = 0.25
        while True:
            assert worker.process is not None
            code = await worker.process.wait()
            self.runtime.totals.gauges.pop(worker.index, None)  # its connections are gone
            if self.stopping:
                return
            print(f"portico: worker {worker.index} (pid {worker.pid}) exited with {code}; "
                  f"starting it again in {delay:g}s", file=sys.stderr, flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_DELAY_MAX)
            if self.stopping:
                return
            await worker.start()

    def app_changed(self, name: str, state: BackendState) -> None:
        self.broadcast(channel.AppChanged(name, str(state)))

    def broadcast(self, message: channel.Message) -> None:
        for worker in self.workers:
            worker.send(message)

    def signal(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                worker.process.send_signal(signum)

    async def stop(self, timeout: float) -> int:
        """SIGTERM: each worker drains and exits; SIGKILL for one that outlives the drain.
        The connections a worker cut at its drain timeout are its own to say: 0 here."""
        if self.stopping:
            return 0
        self.stopping = True
        for watcher in self._watchers.values():
            watcher.cancel()
        self.signal(signal.SIGTERM)
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                await asyncio.wait_for(worker.process.wait(), timeout + 5)
            except TimeoutError:
                worker.process.kill()
                await worker.process.wait()
        close(self.bound)
        await self.runtime.stop([], 0)
        return 0

    def cut(self) -> None:
        """Stop draining now: each worker closes what is still open (the gateways a
        reload replaced included) and exits."""
        for watcher in self._watchers.values():
            watcher.cancel()  # stopping: none is started again
        self.broadcast(channel.Cut())
        self.runtime.cut()

    async def counts(self) -> list[tuple[int, int] | None]:
        """Per worker, its open connections and requests (None: it did not answer)."""
        return list(await asyncio.gather(*(worker.count() for worker in self.workers)))

    async def status(self) -> list[dict[str, Any]]:
        rows = []
        for worker, counts in zip(self.workers, await self.counts(), strict=True):
            rows.append({"index": worker.index, "pid": worker.pid, "starts": worker.starts,
                         "connections": counts[0] if counts else None,
                         "requests": counts[1] if counts else None})
        return rows
