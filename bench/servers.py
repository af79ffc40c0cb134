"""The processes ``make bench`` compares: an nginx origin, and nginx, HAProxy and portico
proxies in front of it, each configured alike (upstream keep-alive, an access log,
X-Forwarded-* set, the ``/myapp`` prefix stripped, one certificate for https); and,
for reference, the floor for any Python proxy here (floor.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CPUS = os.cpu_count() or 1
PIN = CPUS >= 2 and shutil.which("taskset") is not None
PROXY_CPU, LOAD_CPU = 0, 1 % CPUS  # the proxy under test alone; origin and wrk together


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if PIN and cpu is not None else argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    tls_port: int

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def nginx_conf(work: Path, body: str) -> Path:
    user = "user root;" if os.geteuid() == 0 else ""
    conf = work / f"nginx-{abs(hash(body))}.conf"
    temp = work / "tmp"
    temp.mkdir(exist_ok=True)
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {conf}.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    keepalive_requests 1000000;
    client_max_body_size 4m;
    {body}
}}
""")
    return conf


def start_origin(work: Path) -> Running:
    """nginx serving /small (5 bytes), /16k, /big (1 MiB) and /upload (reads the whole
    body before it answers: it passes the body to /small on itself)."""
    port = free_port()
    www = work / "www"
    www.mkdir(exist_ok=True)
    (www / "16k").write_bytes(b"x" * (16 << 10))
    (www / "big").write_bytes(b"x" * (1 << 20))
    conf = nginx_conf(work, f"""
    access_log off;
    upstream self {{ server 127.0.0.1:{port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        client_body_buffer_size 4m;
        location = /small {{ return 200 "hello"; }}
        location = /16k {{ root {www}; }}
        location = /big {{ root {www}; }}
        location = /upload {{
            proxy_pass http://self/small;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
    }}""")
    proc = subprocess.Popen(pinned(LOAD_CPU, ["nginx", "-c", str(conf), "-p", str(work)]),
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return Running("origin", proc, port, 0)


def certificate(work: Path) -> tuple[Path, Path]:
    """One certificate for every proxy's https listener (from portico's local CA)."""
    from portico.tls.authority import issue

    issued = issue(work / "tls", ["localhost", "127.0.0.1"])
    return issued.cert, issued.key


def start_nginx(work: Path, origin: int, cpu: int | None) -> Running:
    port, tls_port = free_port(), free_port()
    cert, key = certificate(work)
    conf = nginx_conf(work, f"""
    access_log {work}/nginx-access.log combined buffer=64k flush=1s;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl http2 backlog=4096;  # h2 by ALPN (bench/http2.py)
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location /myapp/ {{
            proxy_pass http://origin/;
            proxy_http_version 1.1;
            proxy_request_buffering off;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Prefix /myapp;
        }}
    }}""")
    proc = subprocess.Popen(pinned(cpu, ["nginx", "-c", str(conf), "-p", str(work)]),
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    wait_port(tls_port)
    return Running("nginx", proc, port, tls_port)


def start_haproxy(work: Path, origin: int, cpu: int | None) -> Running:
    port, tls_port = free_port(), free_port()
    cert, key = certificate(work)
    pem = work / "haproxy.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    conf = work / "haproxy.cfg"
    conf.write_text(f"""
global
    nbthread 1
    maxconn 8192
    log stdout format raw local0
    tune.ssl.default-dh-param 2048
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 60s
    http-reuse always
frontend proxy
    bind 127.0.0.1:{port}
    bind 127.0.0.1:{tls_port} ssl crt {pem} ssl-min-ver TLSv1.2
    option forwardfor
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    http-request set-header X-Forwarded-Prefix /myapp
    default_backend origin
backend origin
    http-request replace-path /myapp(/.*)? \\1
    server origin 127.0.0.1:{origin}
""")
    proc = subprocess.Popen(pinned(cpu, ["haproxy", "-f", str(conf), "-db"]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    wait_port(tls_port)
    return Running("haproxy", proc, port, tls_port)


def start_portico(work: Path, origin: int, cpu: int | None, workers: int = 1,
                  extra: str = "", name: str = "") -> Running:
    """``extra``: more config (a table such as ``[metrics]``); ``name``: its label."""
    port, tls_port = free_port(), free_port()
    cert, key = certificate(work)
    conf = work / f"portico-{workers}{name}.toml"
    conf.write_text(f"""
[server]
listen = ["http://127.0.0.1:{port}", "https://127.0.0.1:{tls_port}"]
access_log = "{work}/portico-access.log"
workers = {workers}

[[tls.certificate]]
hosts = ["localhost", "127.0.0.1"]
cert = "{cert}"
key = "{key}"

[server.limits]
max_keepalive_requests = 1000000  # as keepalive_requests in the nginx configs

[server.pool]
idle_timeout = "30s"

[[route]]
path = "/myapp"
upstream = "http://127.0.0.1:{origin}/"
request_headers.set = {{ "X-Forwarded-Prefix" = "{{prefix}}" }}
{extra}
""")
    proc = subprocess.Popen(
        pinned(cpu, [sys.executable, "-m", "portico", "run", "-c", str(conf)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PORTICO_STATE_DIR": str(work / "state")},
    )
    wait_port(port)
    wait_port(tls_port)
    label = name or ("portico" if workers == 1 else f"portico x{workers}")
    return Running(label, proc, port, tls_port)


def start_floor(work: Path, origin: int, cpu: int | None, spin_us: float = 0.0) -> Running:
    port, tls_port = free_port(), free_port()
    cert, key = certificate(work)
    script = Path(__file__).resolve().parent / "floor.py"
    proc = subprocess.Popen(
        pinned(cpu, [sys.executable, str(script), str(port), str(tls_port), str(origin),
                     str(cert), str(key), str(spin_us)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port(port)
    wait_port(tls_port)
    return Running("floor", proc, port, tls_port)
