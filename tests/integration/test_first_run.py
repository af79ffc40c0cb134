"""The first run: ./portico.toml by default, ``portico init``, and ``check`` finding what
``run`` would refuse (files, ports, imports), each as ``file: key: what to change``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

REPO = Path(__file__).parents[2]
GUIDE = REPO / "docs" / "guide" / "first-run.md"

FLASK_APP = '''\
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello from the first run\\n"
'''

# Makes the interpreter it starts in unable to find gevent, as in an environment where
# it was never installed: put on an app's PYTHONPATH (site imports sitecustomize).
HIDE_GEVENT = '''\
import sys


class HideGevent:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "gevent":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HideGevent())
'''


def portico(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portico", *args], capture_output=True, text=True,
        timeout=timeout, cwd=cwd,
        env={**os.environ, "COLUMNS": "300", "PORTICO_STATE_DIR": str(cwd / ".state")},
    )


class Serving:
    """``portico run`` with no ``-c``, in ``cwd``; ready when it says so."""

    def __init__(self, cwd: Path) -> None:
        self.lines: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portico", "run"], cwd=cwd, text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "300", "PORTICO_STATE_DIR": str(cwd / ".state")},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(60) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("portico did not start:\n" + "".join(self.lines))

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if found and not self.port:
                self.port = int(found.group(1))
            if "portico ready:" in line:
                self._ready.set()
        self._ready.set()

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as reply:
            return reply.status, reply.read().decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


@pytest.fixture
def serving() -> Iterator[list[Serving]]:
    started: list[Serving] = []
    yield started
    for proc in started:
        proc.stop()


# -- ./portico.toml is the default ------------------------------------------------------

def test_check_explain_and_run_without_c_read_portico_toml_here(
    tmp_path: Path, serving: list[Serving]
) -> None:
    (tmp_path / "portico.toml").write_text(
        '[server]\nlisten = ["http://127.0.0.1:0"]\n\n'
        '[[route]]\npath = "/from-the-file"\nupstream = "http://127.0.0.1:9/"\n')
    checked = portico("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "/from-the-file" in checked.stdout and "portico.toml is valid" in checked.stdout
    assert "using ./portico.toml" in checked.stderr
    assert "/from-the-file" in portico("explain", cwd=tmp_path).stdout

    serving.append(proc := Serving(tmp_path))
    assert proc.port != 8080  # the file's port 0, not the demo's 8080
    assert "using ./portico.toml" in "".join(proc.lines)


def test_without_portico_toml_the_demo_is_used_and_said(tmp_path: Path) -> None:
    result = portico("check", "--config-only", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no ./portico.toml here: using the built-in demo" in result.stderr
    assert "/myapp" in result.stdout and "app myapp" in result.stdout


# -- portico init -----------------------------------------------------------------------

def test_init_writes_a_config_that_checks_and_serves_the_app_under_its_prefix(
    tmp_path: Path, serving: list[Serving]
) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    made = portico("init", "--prefix", "/hello", "--listen", "http://127.0.0.1:0", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "portico.toml").read_text()
    assert 'wsgi = "app:app"' in text and 'path = "/hello"' in text
    assert "# found in app.py: app = Flask(" in text

    checked = portico("check", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr

    serving.append(proc := Serving(tmp_path))
    assert proc.get("/hello/") == (200, "hello from the first run\n")


def test_init_refuses_to_overwrite_and_force_replaces(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    (tmp_path / "portico.toml").write_text("# mine\n")
    refused = portico("init", cwd=tmp_path)
    assert refused.returncode == 1
    assert "portico.toml exists; not overwritten" in refused.stderr and "--force" in refused.stderr
    assert (tmp_path / "portico.toml").read_text() == "# mine\n"

    forced = portico("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert 'wsgi = "app:app"' in (tmp_path / "portico.toml").read_text()


def test_init_finds_an_asgi_app_and_writes_the_prefix_advice(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(  # read, never imported: FastAPI need not be installed
        "from fastapi import FastAPI\n\napi: FastAPI = FastAPI(title='x')\n")
    made = portico("init", "--prefix", "/api/", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "portico.toml").read_text()
    assert 'asgi = "main:api"' in text and 'server = "uvicorn"' in text
    assert 'path = "/api"' in text and "preserve_path = false" in text
    assert "--root-path /api" in text and "/api/api" not in text
    assert portico("check", "--config-only", cwd=tmp_path).returncode == 0


def test_init_without_an_app_says_what_it_looked_for(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("print('no app here')\n")
    result = portico("init", cwd=tmp_path)
    assert result.returncode == 1 and "--app module:attr" in result.stderr
    assert not (tmp_path / "portico.toml").exists()

    given = portico("init", "--app", "app:application", "--server", "waitress", cwd=tmp_path)
    assert given.returncode == 0, given.stderr
    assert 'wsgi = "app:application"' in (tmp_path / "portico.toml").read_text()


# -- check finds what run would refuse ----------------------------------------------------

def certificate_files(directory: Path) -> dict[str, Path]:
    """A cert and its key, and a key of another certificate."""
    ca = trustme.CA()
    ours, theirs = ca.issue_cert("localhost"), ca.issue_cert("elsewhere")
    files = {"cert": directory / "site.pem", "key": directory / "site.key",
             "other_key": directory / "other.key"}
    ours.cert_chain_pems[0].write_to_path(str(files["cert"]))
    ours.private_key_pem.write_to_path(str(files["key"]))
    theirs.private_key_pem.write_to_path(str(files["other_key"]))
    return files


def test_check_lists_every_problem_run_would_meet_with_file_and_key(tmp_path: Path) -> None:
    files = certificate_files(tmp_path)
    (tmp_path / "app.py").write_text(FLASK_APP)
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    (tmp_path / "portico.toml").write_text(f"""
[server]
listen = ["http://127.0.0.1:{port}", "https://127.0.0.1:0"]

[[tls.certificate]]
hosts = ["localhost"]
cert = "absent.pem"
key = "site.key"

[[tls.certificate]]
hosts = ["elsewhere"]
cert = "{files['cert'].name}"
key = "{files['other_key'].name}"

[[app]]
name = "typo"
wsgi = "apq:app"

[[app]]
name = "nowhere"
wsgi = "app:app"
cwd = "no-such-dir"

[[route]]
path = "/a"
app = "typo"
""")
    with held:
        result = portico("check", cwd=tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr

    def line(key: str) -> str:
        found = [x for x in lines if x.startswith(f"portico.toml: {key}: ")]
        assert len(found) == 1, (key, result.stderr)
        return found[0]

    assert "absent.pem: cannot read the certificate" in line("tls.certificate[0].cert")
    assert f"this key does not belong to {files['cert']}" in line("tls.certificate[1].key")
    assert f"127.0.0.1:{port} is in use by pid {os.getpid()} (" in line("server.listen[0]")
    assert f"{tmp_path / 'no-such-dir'} is not a directory" in line("app[1].cwd")
    assert "module 'apq' (of 'apq:app') is not found for app 'typo'" in line("app[0].wsgi")
    assert "5 problems above" in result.stderr and "Traceback" not in result.stderr


def test_check_names_the_holder_of_an_app_bind_port(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        bind = f"127.0.0.1:{held.getsockname()[1]}"
        (tmp_path / "portico.toml").write_text(
            '[server]\nlisten = ["http://127.0.0.1:0"]\n\n'
            f'[[app]]\nname = "a"\nwsgi = "app:app"\nbind = "{bind}"\n')
        result = portico("check", cwd=tmp_path)
    assert result.returncode == 1
    assert (f"portico.toml: app[0].bind: {bind} is in use by pid {os.getpid()} ("
            in result.stderr), result.stderr


def test_a_missing_server_package_is_one_line_in_check_and_run_before_anything_starts(
    tmp_path: Path,
) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    (tmp_path / "hide").mkdir()
    (tmp_path / "hide" / "sitecustomize.py").write_text(HIDE_GEVENT)
    (tmp_path / "portico.toml").write_text(
        '[server]\nlisten = ["http://127.0.0.1:0"]\n\n'
        f'[[app]]\nname = "myapp"\nwsgi = "app:app"\nserver = "gunicorn"\n'
        f'env = {{ PYTHONPATH = "{tmp_path / "hide"}" }}\n\n'
        '[[route]]\npath = "/myapp"\napp = "myapp"\n')
    expected = ("portico.toml: app[0].server: gevent is not installed for app 'myapp', which "
                "gunicorn runs with gevent workers (pip install 'portico-proxy[gunicorn]' or "
                "'portico-proxy[apps]')")
    checked = portico("check", cwd=tmp_path)
    assert checked.returncode == 1 and expected in checked.stderr.splitlines(), checked.stderr

    ran = portico("run", cwd=tmp_path)
    assert ran.returncode == 1 and expected in ran.stderr.splitlines(), ran.stderr
    assert "listening on" not in ran.stderr and not (tmp_path / ".state").exists()


def one_app_config(directory: Path, target: str) -> None:
    (directory / "portico.toml").write_text(
        '[server]\nlisten = ["http://127.0.0.1:0"]\n\n'
        f'[[app]]\nname = "myapp"\nwsgi = "{target}"\n\n'
        '[[route]]\npath = "/myapp"\napp = "myapp"\n')


def test_check_reports_a_syntax_error_in_the_app_module_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP + "\n\ndef broken(:\n    pass\n")
    one_app_config(tmp_path, "app:app")
    result = portico("check", cwd=tmp_path)
    assert result.returncode == 1
    assert ("portico.toml: app[0].wsgi: app.py line 11: SyntaxError: invalid syntax"
            in result.stderr.splitlines()), result.stderr
    assert "1 problem" in result.stderr and "Traceback" not in result.stderr


def test_check_reports_an_attribute_the_app_module_does_not_bind(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    one_app_config(tmp_path, "app:aplication")
    result = portico("check", cwd=tmp_path)
    assert result.returncode == 1
    assert ("portico.toml: app[0].wsgi: module app has no top-level 'aplication' "
            "(it defines: Flask, app, hello)" in result.stderr.splitlines()), result.stderr


def test_check_passes_a_valid_app_module_and_never_runs_it(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        FLASK_APP + "\nopen('ran', 'w').close()  # compiled by check, never run\n")
    one_app_config(tmp_path, "app:app")
    result = portico("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "ran").exists()


def test_check_passes_an_app_a_module_imports_from_another(tmp_path: Path) -> None:
    (tmp_path / "mysite").mkdir()
    (tmp_path / "mysite" / "__init__.py").write_text("")
    (tmp_path / "mysite" / "factory.py").write_text(FLASK_APP)
    (tmp_path / "mysite" / "wsgi.py").write_text("from .factory import app\n")
    one_app_config(tmp_path, "mysite.wsgi:app")
    result = portico("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


# -- the examples and the guide -------------------------------------------------------------

@pytest.mark.parametrize("example", ["apache-guide", "iis-guide"])
def test_each_example_checks_in_its_own_directory(example: str) -> None:
    result = portico("check", "-c", "portico.toml", cwd=REPO / "examples" / example)
    assert result.returncode == 0, result.stderr


def test_the_examples_point_at_nothing_outside_the_repository() -> None:
    for path in (REPO / "examples").rglob("*"):
        if path.is_file():
            assert "../" not in path.read_text(), f"{path} points outside its directory"


def guide_configs() -> list[str]:
    blocks = GUIDE.read_text().split("```toml\n")[1:]
    return [block.split("```", 1)[0] for block in blocks]


def test_the_guide_shows_what_init_writes(tmp_path: Path) -> None:
    project = tmp_path / "myproject"
    project.mkdir()
    (project / "app.py").write_text(FLASK_APP)
    assert portico("init", "--prefix", "/myapp", cwd=project).returncode == 0
    assert (project / "portico.toml").read_text() == guide_configs()[0]


@pytest.mark.parametrize("index", range(len(guide_configs())))
def test_every_config_in_the_first_run_guide_checks(tmp_path: Path, index: int) -> None:
    (tmp_path / "app.py").write_text(FLASK_APP)
    # the guide says 8080, as a reader would; the test takes any free port
    (tmp_path / "portico.toml").write_text(guide_configs()[index].replace(":8080", ":0"))
    result = portico("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
