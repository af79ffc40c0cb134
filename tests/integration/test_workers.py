"""``workers = N``: several proxy processes on one address, supervised by the main one."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.portico_proc import Portico, StartPortico
from tests.support.procs import alive, descendants, kill_leftovers
from tests.support.recorder import Recorder
from tests.support.supervised import app_status, run_to_exit, status, tiny, wait_until
from tests.support.tls import handshake, serial_of, start_with_certificate, swap_in

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")


def workers(n: int | str) -> str:
    count = f'"{n}"' if isinstance(n, str) else n
    return f'[server]\nlisten = ["http://127.0.0.1:0"]\ntick = 0.1\nworkers = {count}\n'



def served_by(proxy: Portico, path: str, requests: int) -> set[bytes]:
    """Which workers answered: a request id starts with its process's random base."""
    bases = set()
    for _ in range(requests):  # a new connection each time, so the kernel picks a socket
        response = httpx.get(f"{proxy.url}{path}", headers={"Connection": "close"})
        assert response.status_code == 200, response.text
        bases.add(response.headers["x-request-id"][:12].encode())
    return bases


def worker_pids(proxy: Portico) -> list[int]:
    return [worker["pid"] for worker in status(proxy)["workers"]]


def readme_workers_config() -> str:
    # the README's workers example, moved to the operations guide
    guide = (Path(__file__).parents[2] / "docs" / "guide" / "operations.md").read_text()
    blocks = [piece.split("```", 1)[0] for piece in guide.split("```toml\n")[1:]]
    block = next(b for b in blocks if "workers = 2" in b and "[[app]]" not in b)
    return block.replace('"http://127.0.0.1:8080"', '"http://127.0.0.1:0"')


def test_two_workers_share_the_listener_and_both_serve(start_portico: StartPortico) -> None:
    proxy = start_portico(readme_workers_config() + tiny("tiny"))
    pids = worker_pids(proxy)
    assert len(pids) == 2 and proxy.pid not in pids
    assert set(pids) <= descendants(proxy.pid)
    assert len(served_by(proxy, "/tiny/", 60)) == 2
    assert "(2 workers)" in proxy.log_text()


def test_a_killed_worker_is_replaced_and_no_request_is_lost(start_portico: StartPortico) -> None:
    proxy = start_portico(workers(2) + tiny("tiny"))
    first, second = worker_pids(proxy)
    fds = proxy.open_fds()
    os.kill(first, signal.SIGKILL)
    # Connections the kernel hands to the dead worker's socket wait in its backlog
    # (the main process holds the socket) until the replacement accepts them.
    assert len(served_by(proxy, "/tiny/", 40)) >= 1
    wait_until(lambda: first not in worker_pids(proxy), 10, "a replacement worker")
    now = status(proxy)["workers"]
    assert now[0]["starts"] == 2 and now[1]["pid"] == second
    assert "exited with -9" in proxy.log_text()
    assert proxy.open_fds() == fds  # the dead worker's channel is closed, not leaked


def test_workers_learn_the_app_state_from_the_main_process(start_portico: StartPortico) -> None:
    proxy = start_portico(workers(2) + tiny("tiny"))
    pid = app_status(proxy, "tiny")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), 5, "the app to die")
    # Every worker must wait for the restart rather than fail: the state reaches both.
    for _ in range(6):
        response = httpx.get(f"{proxy.url}/tiny/", headers={"Connection": "close"}, timeout=10)
        assert response.status_code == 200
        assert response.text != f"tiny pid={pid}\n"


def test_sigterm_drains_every_worker_and_leaves_nothing(tmp_path: Path) -> None:
    proxy = Portico(workers(2) + tiny("tiny"), tmp_path)
    family: set[int] = set()
    try:
        assert httpx.get(f"{proxy.url}/tiny/").status_code == 200
        family = descendants(proxy.pid)
        assert len(family) >= 3  # two workers and the app
        assert proxy.stop() == 0
        wait_until(lambda: not any(alive(pid) for pid in family), 5, "children to exit")
    finally:
        if proxy.proc.poll() is None:
            family |= descendants(proxy.pid)
            proxy.kill()
        kill_leftovers(family)
    assert "stopped" in proxy.log_text() and "Traceback" not in proxy.log_text()


@pytest.mark.parametrize("count", [0, "many"])
def test_a_bad_worker_count_is_a_config_error(tmp_path: Path, count: int | str) -> None:
    result = run_to_exit(tmp_path, workers(count))
    assert result.returncode == 2
    assert "server.workers" in result.stderr and "auto" in result.stderr


def test_no_serving_process_loads_the_schema_or_cryptography_and_only_checked_certificates_swap(
    start_portico: StartPortico, recorder: Recorder, tmp_path: Path
) -> None:
    proxy, ca, cert, key = start_with_certificate(start_portico, tmp_path, recorder.url,
                                                  server="workers = 2")
    local_ca = tmp_path / "ca"

    def serials() -> set[int]:
        return {handshake(proxy.https_port, ca)[0] for _ in range(12)}

    # What keeps the main process and the workers near 30 MiB (config/plan.py): the
    # config was checked before the hand-over (server/main.py), and a reload is checked
    # by a child (config/prepare.py).
    for pid in [proxy.pid, *worker_pids(proxy)]:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "pydantic_core" not in maps and "cryptography" not in maps, pid
    # Same pid after the hand-over, and ps still shows which config it serves.
    cmdline = Path(f"/proc/{proxy.pid}/cmdline").read_bytes().split(b"\0")
    assert b"portico.server.main" in cmdline and str(proxy.config_path).encode() in cmdline

    assert serials() == {serial_of(cert)}
    new_serial = swap_in(local_ca, cert, key, ["localhost"])
    os.kill(proxy.pid, signal.SIGHUP)
    wait_until(lambda: serials() == {new_serial}, 10, "every worker to serve the new certificate")

    # An expired certificate loads fine with ssl alone; the reload's check refuses it
    # (cryptography, in the child), so no worker may load it: the reload is refused.
    expired = trustme.CA().issue_cert("localhost", not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    expired.private_key_pem.write_to_path(str(key))
    expired.cert_chain_pems[0].write_to_path(str(cert))
    os.kill(proxy.pid, signal.SIGHUP)
    assert proxy.wait_for_log("reload refused", 5)
    assert "tls.certificate[0].cert" in proxy.log_text() and "expired on 2020-01-01" in proxy.log_text()
    assert serials() == {new_serial}
    maps = Path(f"/proc/{proxy.pid}/maps").read_text()  # still: the checks ran in a child
    assert "pydantic_core" not in maps and "cryptography" not in maps


def test_a_plan_larger_than_a_stream_line_reaches_the_workers(
    start_portico: StartPortico, recorder: Recorder
) -> None:
    routes = "".join(
        f'[[route]]\npath = "/r{i}"\nupstream = "{recorder.url}"\n'
        f'request_headers.set = {{ "X-Route-{i}" = "{"v" * 200}" }}\n'
        for i in range(300)
    )  # a plan of about 150 KiB: over asyncio's default line limit of 64 KiB
    proxy = start_portico(workers(2) + routes)
    assert len(worker_pids(proxy)) == 2
    assert httpx.get(f"{proxy.url}/r299/").status_code == 200


@pytest.mark.parametrize("hand_over", ["exec", "in-process"])
def test_a_changed_certificate_file_reaches_the_workers_only_once_checked(
    start_portico: StartPortico, recorder: Recorder, tmp_path: Path, hand_over: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No signal: the main process's periodic check finds the change and tells the
    # workers which certificate to load again (they keep their pids). The check runs
    # in a child after the exec hand-over (POSIX), in the main process without it
    # (Windows; PORTICO_NO_EXEC).
    if hand_over == "in-process":
        monkeypatch.setenv("PORTICO_NO_EXEC", "1")
    proxy, ca, cert, key = start_with_certificate(
        start_portico, tmp_path, recorder.url, server="workers = 2",
        extra="\n[tls]\nreload_interval = 0.2\n")
    pids = worker_pids(proxy)
    checker_loaded = "cryptography" in Path(f"/proc/{proxy.pid}/maps").read_text()
    assert checker_loaded == (hand_over == "in-process")

    def serials() -> set[int]:
        return {handshake(proxy.https_port, ca)[0] for _ in range(12)}

    new_serial = swap_in(tmp_path / "ca", cert, key, ["localhost"])
    wait_until(lambda: serials() == {new_serial}, 10, "every worker to load the new file")
    assert worker_pids(proxy) == pids

    expired = trustme.CA().issue_cert("localhost", not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    expired.private_key_pem.write_to_path(str(key))
    expired.cert_chain_pems[0].write_to_path(str(cert))
    assert proxy.wait_for_log("keeping the old certificate", 5)
    time.sleep(0.5)  # a few more checks: none may pass the expired file on
    assert serials() == {new_serial}
