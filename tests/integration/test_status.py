"""Finding a running portico (the runtime directory), its counts, its logs, and stopping it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support.client import connect, read_response, read_until_quiet
from tests.support.portico_proc import Portico, StartPortico
from tests.support.procs import alive, descendants, kill_leftovers
from tests.support.status import portico_status, proxy_only, status_json
from tests.support.supervised import TINY, config, tiny, wait_until

# -- status finds the instance -----------------------------------------------------------

def test_status_from_another_directory_and_without_arguments(
    start_portico: StartPortico, tmp_path: Path
) -> None:
    proxy = start_portico(proxy_only())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    relative = os.path.relpath(proxy.config_path, elsewhere)
    assert relative.startswith("..")

    by_config = status_json(proxy.state_dir, "-c", relative, cwd=elsewhere)
    assert by_config["pid"] == proxy.pid
    assert by_config["config"] == str(proxy.config_path.resolve())
    assert by_config["listen"] == [proxy.url]

    only_one = status_json(proxy.state_dir, cwd=elsewhere)  # no -c: the one running
    assert only_one["pid"] == proxy.pid

    runtime = proxy.state_dir / "run"
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    (record,) = runtime.glob("*.json")
    assert json.loads(record.read_text())["pid"] == proxy.pid
    text = portico_status(proxy.state_dir, cwd=elsewhere).stdout
    assert f"config: {proxy.config_path.resolve()}" in text and "0 open requests" in text

    assert proxy.stop() == 0
    assert not list(runtime.glob("*.json")) and not list(runtime.glob("*.sock"))


def test_a_miss_says_where_it_looked(tmp_path: Path) -> None:
    runtime = tmp_path / "state" / "run"
    result = portico_status(tmp_path / "state", "-c", "portico.toml", cwd=tmp_path)
    assert result.returncode == 1
    assert f"no running portico for {tmp_path / 'portico.toml'}" in result.stderr
    assert f"looked for {runtime}/portico-" in result.stderr

    result = portico_status(tmp_path / "state")
    assert result.returncode == 1
    assert f"the runtime directory {runtime} holds no live instance" in result.stderr
    assert "portico run -c" in result.stderr


def test_stale_records_are_ignored_and_removed(start_portico: StartPortico, tmp_path: Path) -> None:
    proxy = start_portico(proxy_only())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    runtime = proxy.state_dir / "run"
    stale = runtime / "old-12345678.json"
    stale.write_text(json.dumps({
        "key": "old-12345678", "pid": gone.pid, "config": "/nowhere/old.toml",
        "listen": [], "started": 1.0, "control": str(runtime / "old-12345678.sock"),
        "logs": "/nowhere",
    }))
    assert status_json(proxy.state_dir)["pid"] == proxy.pid  # still the only one
    assert not stale.exists()


def test_several_running_without_c_lists_them(start_portico: StartPortico) -> None:
    first = start_portico(proxy_only())
    second = start_portico(proxy_only())
    result = portico_status(first.state_dir)
    assert result.returncode == 1
    assert "2 porticos are running; pick one with -c CONFIG" in result.stderr
    assert f"pid {first.pid}: {first.config_path}" in result.stderr
    assert f"pid {second.pid}: {second.config_path}" in result.stderr


def test_counts_are_summed_over_workers(start_portico: StartPortico) -> None:
    proxy = start_portico(proxy_only().replace("tick = 0.1\n", "tick = 0.1\nworkers = 2\n"))
    sockets = [connect(proxy.port) for _ in range(6)]
    try:
        for sock in sockets:  # answered: accepted by a worker and still kept alive
            sock.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock).status == 404
        info = status_json(proxy.state_dir)
        text = portico_status(proxy.state_dir).stdout
    finally:
        for sock in sockets:
            sock.close()
    assert info["connections"] == 6 and info["requests"] == 0
    per_worker = [worker["connections"] for worker in info["workers"]]
    assert len(per_worker) == 2 and sum(per_worker) == 6
    assert "6 client connections" in text and "None" not in text


# -- portico's own responses in the access log ---------------------------------------------

LOG_LINE = re.compile(r'"(\S+) (\S+) HTTP/1.1" (\d+) (\d+) .* rid=(\S+) ')


def logged(proxy: Portico, rid: bytes) -> tuple[str, int, int]:
    """(target, status, bytes) of the access log line with this request id."""
    needle = f"rid={rid.decode()} "
    assert proxy.wait_for_log(needle), proxy.log_text()
    line = next(line for line in proxy.stdout_lines if needle in line)
    match = LOG_LINE.search(line)
    assert match is not None, line
    return match.group(2), int(match.group(3)), int(match.group(4))


def test_own_error_responses_are_logged_with_status_bytes_and_request_id(
    start_portico: StartPortico,
) -> None:
    refused = free_port()  # nothing listens there
    proxy = start_portico(config(
        f'[[route]]\npath = "/down"\nupstream = "http://127.0.0.1:{refused}/"\n'
        '[[route]]\npath = "/small"\nupstream = "http://127.0.0.1:9/"\n'
        'limits.max_body_size = "10"\n'
    ))
    cases = [
        (b"GET /no-route HTTP/1.1\r\nHost: x\r\n\r\n", 404, "/no-route"),
        (b"GET /down/ HTTP/1.1\r\nHost: x\r\n\r\n", 502, "/down/"),
        (b"POST /small/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 413, "/small/"),
        (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "-"),
    ]
    for request, status, target in cases:
        with connect(proxy.port) as sock:  # one framed response: no waiting for quiet
            sock.sendall(request)
            reply = read_response(sock)
        assert reply.status == status, reply.data
        rid = reply.header(b"x-request-id")
        assert rid, reply.data
        assert logged(proxy, rid) == (target, status, len(reply.body))
        assert len(reply.body) > 0


# -- app logs, one directory per config ------------------------------------------------------

def test_two_configs_with_the_same_app_name_log_to_different_files(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proxies: list[Portico] = []
    try:
        for where in ("one", "two"):
            (tmp_path / where).mkdir()
            proxies.append(Portico(config(tiny("web")), tmp_path / where, state=state))
        logs = []
        for proxy in proxies:
            info = status_json(state, "-c", str(proxy.config_path))
            (app,) = info["apps"]
            assert Path(app["log"]).parent == Path(info["logs"])
            logs.append(Path(app["log"]))
            assert f"app logs: {info['logs']}" in portico_status(
                state, "-c", str(proxy.config_path)).stdout
        assert logs[0] != logs[1]
        assert all(log.parent.parent == state / "logs" and log.name == "web.log" for log in logs)
        for log, proxy in zip(logs, proxies, strict=True):
            bind = status_json(state, "-c", str(proxy.config_path))["apps"][0]["bind"]
            port = bind.rsplit(":", 1)[1]
            wait_until(lambda log=log, port=port: f"tinyapp starting on {port}" in (
                log.read_text() if log.exists() else ""), 10, "the app's first line")
            assert log.read_text().count("tinyapp starting") == 1
    finally:
        for proxy in proxies:
            proxy.stop()


# -- stopping ---------------------------------------------------------------------------------

@contextlib.contextmanager
def stopped_in_the_end(proxy: Portico) -> Iterator[tuple[socket.socket, set[int]]]:
    """A client connection to ``proxy`` and the set of its app processes (fill it in);
    whatever a test leaves, the proxy and every process in the set are ended."""
    family: set[int] = set()
    stream = connect(proxy.port)
    try:
        yield stream, family
    finally:
        stream.close()
        if proxy.proc.poll() is None:
            family |= descendants(proxy.pid)
            proxy.kill()
        kill_leftovers(family)
        proxy.stop()


def open_event_stream(stream: socket.socket) -> None:
    """Ask the tiny app's endless event stream, and read up to its first event."""
    stream.sendall(b"GET /events/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    stream.settimeout(10)
    first_event(stream)


def two_sigints(proxy: Portico, first_says: str) -> None:
    """SIGINT: the drain is announced and portico waits; SIGINT again: it ends at once
    (well inside every drain_timeout and stop_timeout the tests set: 30 s)."""
    proxy.proc.send_signal(signal.SIGINT)
    assert proxy.wait_for_log(first_says), proxy.log_text()
    assert proxy.proc.poll() is None  # still draining: the stream stays open
    started = time.monotonic()
    proxy.proc.send_signal(signal.SIGINT)
    assert proxy.proc.wait(15) == 0
    assert time.monotonic() - started < 10


def test_sigint_says_what_it_drains_and_a_second_one_stops_at_once(tmp_path: Path) -> None:
    proxy = Portico(config(tiny("events")), tmp_path)
    with stopped_in_the_end(proxy) as (stream, family):
        wait_until(lambda: len(descendants(proxy.pid)) >= 1, 10, "the app")
        family |= descendants(proxy.pid)
        open_event_stream(stream)
        two_sigints(proxy, "stopping: draining 1 open request for up to 30s "
                           "(Ctrl-C again to stop now)")
        assert read_until_quiet(stream, quiet=5).closed
        wait_until(lambda: not any(alive(pid) for pid in family), 5, "the app to exit")
    assert "stopping now" in proxy.log_text() and "stopped" in proxy.log_text()


def first_event(stream: socket.socket) -> None:
    """Read until the event stream's first event (the head may come on its own)."""
    seen = b""
    while b"data: 0" not in seen:
        chunk = stream.recv(65536)
        assert chunk, seen
        seen += chunk


def deaf_to_sigterm(name: str, extra: str = "") -> str:
    """tiny(name), run so that it ignores SIGTERM: only SIGKILL stops it."""
    code = ("import runpy, signal, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            f"sys.argv = [{str(TINY)!r}, *sys.argv[1:]]; "
            f"runpy.run_path({str(TINY)!r}, run_name='__main__')")
    return tiny(name, extra=extra).replace(
        json.dumps(["{python}", str(TINY), "{port}"]), json.dumps(["{python}", "-c", code, "{port}"])
    )


def test_a_second_sigint_kills_an_app_that_ignores_sigterm(tmp_path: Path) -> None:
    proxy = Portico(config(deaf_to_sigterm("events", extra='stop_timeout = "30s"')), tmp_path)
    with stopped_in_the_end(proxy) as (stream, family):
        wait_until(lambda: len(descendants(proxy.pid)) >= 1, 10, "the app")
        family |= descendants(proxy.pid)
        open_event_stream(stream)
        two_sigints(proxy, "stopping: draining 1 open request")  # not its 30 s stop_timeout
        assert not any(alive(pid) for pid in family), proxy.log_text()
    assert "stopped" in proxy.log_text()


@pytest.mark.parametrize("server", ["", "workers = 2\n"], ids=["one-process", "workers"])
def test_a_second_sigint_also_cuts_what_a_reload_replaced(tmp_path: Path, server: str) -> None:
    text = config(tiny("events")).replace("tick = 0.1\n", "tick = 0.1\n" + server)
    proxy = Portico(text, tmp_path)
    with stopped_in_the_end(proxy) as (stream, family):
        open_event_stream(stream)
        proxy.proc.send_signal(signal.SIGHUP)  # the stream stays with what it replaces
        assert proxy.wait_for_log("reloaded", 15), proxy.log_text()
        family |= descendants(proxy.pid)
        # Counted though a reload replaced it; cut well before the old one's drain_timeout.
        two_sigints(proxy, "stopping: draining 1 open request")
        assert read_until_quiet(stream, quiet=5).closed
        assert not any(alive(pid) for pid in family)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def test_sigint_while_an_app_starts_stops_at_once(tmp_path: Path) -> None:
    path = tmp_path / "portico.toml"
    path.write_text(config(tiny("slow", "--never-listen", extra='start_timeout = "30s"')))
    proc = subprocess.Popen(
        [sys.executable, "-m", "portico", "run", "-c", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PORTICO_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"},
    )
    family: set[int] = set()
    try:
        wait_until(lambda: any("--never-listen" in cmdline(pid) for pid in descendants(proc.pid)),
                   15, "the app to be started")
        family = descendants(proc.pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        assert time.monotonic() - started < 10, err  # not start_timeout (30 s)
        assert proc.returncode == 0, err
        assert "stopping: the apps were still starting" in err and "stopped" in err
        assert "listening on" not in err
        assert not any(alive(pid) for pid in family)
    finally:
        if proc.poll() is None:
            family |= descendants(proc.pid)
            proc.kill()
            proc.communicate()
        kill_leftovers(family)


def test_stopping_with_nothing_open_says_so(start_portico: StartPortico) -> None:
    proxy = start_portico(proxy_only())
    with socket.create_connection(("127.0.0.1", proxy.port)):
        pass
    assert proxy.stop() == 0
    assert "stopping: no open requests" in proxy.log_text()
