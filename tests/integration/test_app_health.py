"""Readiness that cannot lie and liveness: real gunicorn, real tinyapp, real strangers."""

from __future__ import annotations

import os
import re
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from portico.config.load import load, parse
from portico.errors import ConfigError
from portico.ports import bind_holder, foreign_listener, listeners
from tests.support.portico_proc import StartPortico
from tests.support.procs import alive
from tests.support.supervised import app_status, config, run_to_exit, tiny

REPO = Path(__file__).parents[2]
LINUX = sys.platform.startswith("linux")
QUICK_HEALTH = 'health_interval = "0.2s"\nhealth_timeout = "0.3s"\nunhealthy_after = 2'


# -- readiness ------------------------------------------------------------------------

@pytest.mark.parametrize(("target", "error"), [
    ("nosuchmodule:app", "ModuleNotFoundError: No module named 'nosuchmodule'"),
    ("portico.demo.app:ap", "Failed to find attribute 'ap' in 'portico.demo.app'"),
])
def test_a_wsgi_target_whose_workers_cannot_boot_is_reported_failed(
    tmp_path: Path, target: str, error: str
) -> None:
    # gunicorn's master listens (and accepts) before its workers import the app.
    started = time.monotonic()
    result = run_to_exit(tmp_path, config(f"""
[[app]]
name = "broken"
wsgi = "{target}"
workers = 1
start_timeout = "8s"
"""))
    assert result.returncode == 1
    assert time.monotonic() - started < 8 + 5  # start_timeout, and portico's own start
    assert "app 'broken' did not start: exited with status" in result.stderr
    tail = result.stderr.split("lines of its output:")[1]
    assert error in tail
    assert "listening on" not in result.stderr and "ready:" not in result.stderr


def test_a_port_held_by_another_process_is_refused_naming_it(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        result = run_to_exit(tmp_path, config(tiny("tiny", extra=f'bind = "127.0.0.1:{port}"')))
        stranger.settimeout(0)
        try:
            connection, _ = stranger.accept()
        except BlockingIOError:  # Linux: the bind test alone, not even a connect reached it
            pass
        else:  # elsewhere a connect test may have: never with a request in it
            with connection:
                assert not LINUX and connection.recv(1) == b""
    assert result.returncode == 1
    expected = f"app 'tiny' did not start: 127.0.0.1:{port} is already in use by pid {os.getpid()}"
    assert expected in result.stderr
    assert "tinyapp starting" not in result.stderr  # refused before it was spawned
    assert "listening on" not in result.stderr


@pytest.mark.skipif(not LINUX, reason="listeners are matched to processes through /proc")
def test_an_app_whose_port_is_served_outside_its_process_group_is_refused(
    tmp_path: Path,
) -> None:
    result = run_to_exit(tmp_path, config(tiny("tiny", "--serve-from-own-session")))
    served_by = re.search(r"serving from pid (\d+)", result.stdout + result.stderr)
    assert served_by is not None, result.stderr
    server = int(served_by.group(1))
    try:
        assert result.returncode == 1
        assert re.search(
            rf"app 'tiny' did not start: 127\.0\.0\.1:\d+ is served by pid {server} "
            r"\([^)]*tinyapp\.py[^)]*\), which is not one of the app's processes",
            result.stderr,
        ), result.stderr
        assert "listening on" not in result.stderr
    finally:
        if alive(server):
            os.kill(server, 9)


def test_listener_check_false_serves_an_app_that_hands_its_port_to_another_process(
    start_portico: StartPortico,
) -> None:
    proxy = start_portico(config(tiny("tiny", "--serve-from-own-session",
                                      extra="listener_check = false")))
    served_by = re.search(r"serving from pid (\d+)", proxy.log_text())
    assert served_by is not None, proxy.log_text()
    server = int(served_by.group(1))
    try:
        assert httpx.get(f"{proxy.url}/tiny/").text == f"tiny pid={server}\n"
    finally:
        if alive(server):
            os.kill(server, 9)


@pytest.mark.skipif(not LINUX, reason="listeners are matched to processes through /proc")
def test_listeners_are_matched_to_their_process_through_proc() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert list(listeners("127.0.0.1", port).values()) == [{os.getpid()}]
        assert listeners("127.0.0.2", port) == {}  # another address, no overlap
        assert str(bind_holder("0.0.0.0", port)).startswith(f"pid {os.getpid()} (")
        assert foreign_listener("127.0.0.1", port, os.getpgid(0)) is None
        assert foreign_listener("127.0.0.1", port, -1) is not None
    assert bind_holder("127.0.0.1", port) is None


# -- liveness -------------------------------------------------------------------------

def test_a_hung_app_is_restarted_and_status_says_why(start_portico: StartPortico) -> None:
    proxy = start_portico(config(tiny("hung", "--hang-on", "/hang", extra=QUICK_HEALTH)))
    before = app_status(proxy, "hung")
    assert before["last_reason"] is None and before["restarts"] == 0
    assert httpx.get(f"{proxy.url}/hung/hang").status_code == 200  # from now on it hangs
    reason = "health check: no answer within 0.3s (2 in a row)"
    assert proxy.wait_for_log(f"app hung: {reason}; stopping it", timeout=10), proxy.log_text()
    assert proxy.wait_for_log("app hung: back up", timeout=10), proxy.log_text()
    after = app_status(proxy, "hung")
    assert after["restarts"] == 1 and after["last_reason"] == reason
    assert after["state"] == "up" and after["pid"] != before["pid"]
    assert not alive(before["pid"])
    answer = httpx.get(f"{proxy.url}/hung/", timeout=10)
    assert answer.text == f"tiny pid={after['pid']}\n"
    log = Path(after["log"]).read_text()  # state/logs/<config key>/hung.log
    assert "portico: health check 1 of 2 failed: no answer within 0.3s" in log


def test_an_app_answering_5xx_follows_the_crash_rules(start_portico: StartPortico) -> None:
    # max_restarts = 0: the first unhealthy verdict counts as one crash too many.
    proxy = start_portico(config(tiny("sick", "--sick-on", "/sick", extra=(
        f'health = "/healthz"\n{QUICK_HEALTH}\nmax_restarts = 0\nrequest_wait = "0.5s"'))))
    pid = app_status(proxy, "sick")["pid"]
    assert httpx.get(f"{proxy.url}/sick/sick").status_code == 200  # /healthz now answers 500
    assert proxy.wait_for_log("app sick: health check: GET /healthz answered 500 (2 in a row); "
                              "1 crashes within 60s, marked failed", timeout=10), proxy.log_text()
    sick = app_status(proxy, "sick")
    assert sick["state"] == "failed" and sick["pid"] is None and sick["restarts"] == 0
    assert sick["last_reason"] == "health check: GET /healthz answered 500 (2 in a row)"
    assert not alive(pid)
    assert httpx.get(f"{proxy.url}/sick/").status_code == 503


# -- the documented keys ----------------------------------------------------------------

def guide_config() -> str:
    text = (REPO / "docs" / "guide" / "apps.md").read_text()
    return text.split("```toml\n", 1)[1].split("```", 1)[0]


def test_the_guide_health_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "portico.toml"
    path.write_text(guide_config())
    loaded, _ = load(path)
    app = loaded.app[0]
    assert (app.health, app.health_interval, app.health_timeout, app.unhealthy_after) == (
        "/healthz", 10.0, 5.0, 3)


@pytest.mark.parametrize(("line", "message"), [
    ("health_interval = 0", 'invalid health_interval 0: use a duration above zero, e.g. "5s"'),
    ('health_timeout = "0ms"', 'invalid health_timeout 0: use a duration above zero'),
    ("unhealthy_after = 0", "invalid unhealthy_after 0: use a whole number of failed probes"),
    ('unhealthy_after = "3"', "invalid unhealthy_after '3': use a whole number"),
])
def test_health_keys_are_validated_with_what_is_valid(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(f'[[app]]\nname = "a"\nwsgi = "app:app"\n{line}\n', "portico.toml")
    assert message in str(error.value)
    assert f"app[0].{line.split()[0]}" in str(error.value)


def test_defaults_probe_every_10s_with_5s_timeout_and_restart_after_3() -> None:
    app = parse('[[app]]\nname = "a"\nwsgi = "app:app"\n', "portico.toml").app[0]
    assert (app.health_interval, app.health_timeout, app.unhealthy_after) == (10.0, 5.0, 3)
