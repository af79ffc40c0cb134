"""``make bench``: nginx and portico in front of the same origin, measured with wrk in one run.

Layout on a 2-core machine: the proxy under test is pinned to CPU 0; the
origin (a separate nginx) and wrk share CPU 1. Each proxy runs as one process
(nginx: one worker). Both proxies keep upstream connections alive and write
an access log, so the comparison is like for like; the https row uses one
certificate (ECDSA P-256) for both, TLS 1.2/1.3, connections kept alive. Results: a table on
stdout and JSON in ``bench/results/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 50
ROOT = Path(__file__).resolve().parent
CPUS = os.cpu_count() or 1
PIN = CPUS >= 2 and shutil.which("taskset") is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if PIN else argv


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


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
    keepalive_requests 100000;
    {body}
}}
""")
    return conf


def start_origin(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (work / "www").mkdir(exist_ok=True)
    (work / "www" / "big").write_bytes(b"x" * (1 << 20))
    conf = nginx_conf(work, f"""
    access_log off;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location = /small {{ return 200 "hello"; }}
        location = /big {{ root {work}/www; }}
    }}""")
    proc = subprocess.Popen(pinned(1 % CPUS, ["nginx", "-c", str(conf), "-p", str(work)]),
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def certificate(work: Path) -> tuple[Path, Path]:
    """One certificate for both proxies' https listeners (from portico's local CA)."""
    from portico.tls.authority import issue

    issued = issue(work / "tls", ["localhost", "127.0.0.1"])
    return issued.cert, issued.key


def start_nginx_proxy(work: Path, origin: int) -> tuple[subprocess.Popen[bytes], int, int]:
    port, tls_port = free_port(), free_port()
    cert, key = certificate(work)
    conf = nginx_conf(work, f"""
    access_log {work}/nginx-access.log combined buffer=64k flush=1s;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location /myapp/ {{
            proxy_pass http://origin/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Prefix /myapp;
        }}
    }}""")
    proc = subprocess.Popen(pinned(0, ["nginx", "-c", str(conf), "-p", str(work)]),
                            stderr=subprocess.DEVNULL)
    wait_port(port)
    wait_port(tls_port)
    return proc, port, tls_port


def start_portico(work: Path, origin: int) -> tuple[subprocess.Popen[bytes], int, int]:
    port, tls_port = free_port(), free_port()
    cert, key = certificate(work)
    conf = work / "portico.toml"
    conf.write_text(f"""
[server]
listen = ["http://127.0.0.1:{port}", "https://127.0.0.1:{tls_port}"]
access_log = "{work}/portico-access.log"

[[tls.certificate]]
hosts = ["localhost", "127.0.0.1"]
cert = "{cert}"
key = "{key}"

[server.pool]
idle_timeout = "30s"

[[route]]
path = "/myapp"
upstream = "http://127.0.0.1:{origin}/"
request_headers.set = {{ "X-Forwarded-Prefix" = "{{prefix}}" }}
""")
    proc = subprocess.Popen(
        pinned(0, [sys.executable, "-m", "portico", "run", "-c", str(conf)]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PORTICO_STATE_DIR": str(work / "state")},
    )
    wait_port(port)
    wait_port(tls_port)
    return proc, port, tls_port


def wrk(url: str, connections: int = CONNECTIONS, seconds: int = SECONDS) -> dict[str, float]:
    out = subprocess.run(
        pinned(1 % CPUS, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]),
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    unit = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else 0.0,
        "mib_s": float(transfer.group(1)) * unit.get(transfer.group(2), 1.0) if transfer else 0.0,
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if socket_errors else 0.0,
    }


def median_run(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per workload and figure, the median over the rounds."""
    return {
        workload: {
            key: statistics.median(run[workload][key] for run in runs) for key in figures
        }
        for workload, figures in runs[0].items()
    }


def rss_mib(pid: int) -> float:
    total = 0
    for child in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> int:
    for tool in ("nginx", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed; `make bench` installs it", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="portico-bench-"))
    origin, origin_port = start_origin(work)
    workloads = {
        "small GET": ("http", "/myapp/small"),
        "1 MiB GET": ("http", "/myapp/big"),
        "https small": ("https", "/myapp/small"),
    }
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {"nginx": [], "portico": []}
    try:
        for _ in range(ROUNDS):  # interleaved, so drift in machine speed hits both alike
            for name, starter in (("nginx", start_nginx_proxy), ("portico", start_portico)):
                proc, port, tls_port = starter(work, origin_port)
                try:
                    wrk(f"http://127.0.0.1:{port}/myapp/small", seconds=2)  # warm-up
                    ports = {"http": port, "https": tls_port}
                    run = {
                        w: wrk(f"{scheme}://127.0.0.1:{ports[scheme]}{path}")
                        for w, (scheme, path) in workloads.items()
                    }
                    run["rss"] = {"mib": rss_mib(proc.pid)}
                    rounds[name].append(run)
                finally:
                    stop(proc)
    finally:
        stop(origin)
    results = {name: median_run(runs) for name, runs in rounds.items()}
    print(f"\nportico vs nginx, median of {ROUNDS} interleaved rounds, "
          f"wrk -t1 -c{CONNECTIONS} -d{SECONDS}s, "
          + ("proxy pinned to CPU 0, origin and wrk to CPU 1" if PIN else "unpinned (1 CPU)"))
    print(f"{'workload':<12} {'nginx req/s':>12} {'portico req/s':>14} {'ratio':>7} "
          f"{'nginx p99':>10} {'portico p99':>12}")
    for workload in workloads:
        n, p = results["nginx"][workload], results["portico"][workload]
        print(f"{workload:<12} {n['rps']:>12.0f} {p['rps']:>14.0f} {p['rps'] / n['rps']:>7.2f} "
              f"{n['p99_ms']:>8.2f}ms {p['p99_ms']:>10.2f}ms")
    print(f"RSS after the run: nginx {results['nginx']['rss']['mib']:.1f} MiB (master + worker), "
          f"portico {results['portico']['rss']['mib']:.1f} MiB")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "results" / f"bench-{stamp}.json"
    out.write_text(json.dumps({"seconds": SECONDS, "connections": CONNECTIONS, "pinned": PIN,
                               "rounds": rounds, "median": results}, indent=2))
    print(f"results: {out.relative_to(ROOT.parent)}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
