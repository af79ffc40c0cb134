"""``make soak``: mixed traffic through portico to a real gunicorn app, then the figures.

Clients: small GETs (keep-alive and not), 4 MiB downloads, streamed responses,
1 MiB uploads, and clients that read part of a 16 MiB download and hang up.
Reported: requests, errors (deliberate disconnects are counted apart and are not
errors), portico's RSS at rest after a warm-up and at rest after the run (growth
must stay under 10%; samples under load are shown too), and its open descriptors
at rest before and after (must be equal). Exit 1 if a
criterion fails.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_portico(work: Path) -> tuple[subprocess.Popen[str], int]:
    config = work / "portico.toml"
    config.write_text(f"""
[server]
listen = ["http://127.0.0.1:0"]
access_log = "off"

[[app]]
name = "myapp"
wsgi = "portico.demo.app:app"
workers = 4
bind = "127.0.0.1:{free_port()}"

[[route]]
path = "/myapp"
app = "myapp"
limits.max_body_size = "8MiB"
""")
    proc = subprocess.Popen(
        [sys.executable, "-m", "portico", "run", "-c", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PORTICO_STATE_DIR": str(work / "state")},
    )
    assert proc.stderr is not None
    port = 0
    for line in proc.stderr:
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if match:
            port = int(match.group(1))
        if "portico ready:" in line:
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    return proc, port


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Traffic:
    def __init__(self, base: str, port: int, only: set[str]) -> None:
        self.only = only
        self.base = base
        self.port = port
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.lock = threading.Lock()

    def note(self, kind: str, ok: bool, why: str = "") -> None:
        with self.lock:
            self.counts[kind] += 1
            if not ok:
                self.errors[f"{kind}: {why}"[:160]] += 1

    def worker(self, seed: int, stop: threading.Event) -> None:
        rng = random.Random(seed)
        keep = httpx.Client(timeout=30)
        upload = os.urandom(2**20)
        actions = [self.small, self.small, self.small, self.fresh, self.download, self.stream,
                   self.upload, self.hang_up]
        if self.only:
            actions = [action for action in actions if action.__name__ in self.only]
        while not stop.is_set():
            action = rng.choice(actions)
            try:
                action(keep, upload)
            except (httpx.HTTPError, OSError) as exc:
                self.note(action.__name__, False, repr(exc))
        keep.close()

    def small(self, client: httpx.Client, _: bytes) -> None:
        response = client.get(f"{self.base}/myapp/")
        self.note("small", response.status_code == 200, str(response.status_code))

    def fresh(self, _: httpx.Client, __: bytes) -> None:
        response = httpx.get(f"{self.base}/myapp/whoami.json", headers={"Connection": "close"})
        self.note("fresh", response.status_code == 200, str(response.status_code))

    def download(self, client: httpx.Client, _: bytes) -> None:
        response = client.get(f"{self.base}/myapp/bytes?size={4 * 2**20}")
        ok = response.status_code == 200 and len(response.content) == 4 * 2**20
        self.note("download", ok, f"{response.status_code} {len(response.content)}")

    def stream(self, client: httpx.Client, _: bytes) -> None:
        response = client.get(f"{self.base}/myapp/stream?pieces=20&delay=0.01")
        ok = response.status_code == 200 and response.text.count("piece") == 20
        self.note("stream", ok, str(response.status_code))

    def upload(self, client: httpx.Client, body: bytes) -> None:
        response = client.post(f"{self.base}/myapp/echo", content=body)
        ok = response.status_code == 200 and response.json()["received"] == len(body)
        self.note("upload", ok, str(response.status_code))

    def hang_up(self, _: httpx.Client, __: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
            sock.sendall(b"GET /myapp/bytes?size=16777216 HTTP/1.1\r\nHost: soak\r\n\r\n")
            sock.recv(65536)  # a little, then hang up: deliberate, not an error
        self.note("hang_up", True)


def run_load(traffic: Traffic, clients: int, seconds: float, pid: int = 0) -> list[int]:
    """Run the clients for ``seconds``; with ``pid``, sample its RSS ten times on the way."""
    stop = threading.Event()
    workers = [threading.Thread(target=traffic.worker, args=(n, stop)) for n in range(clients)]
    for worker in workers:
        worker.start()
    samples = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, seconds / 10))
        if pid:
            samples.append(rss_kib(pid))
    stop.set()
    for worker in workers:
        worker.join(60)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warm-up", type=float, default=20.0,
                        help="seconds of load before the first RSS reading")
    parser.add_argument("--only", default="", help="comma-separated actions, e.g. small,upload")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="portico-soak-"))
    proc, port = start_portico(work)
    base = f"http://127.0.0.1:{port}"
    try:
        httpx.get(f"{base}/myapp/")
        time.sleep(3)  # the warm-up connection has left the pool
        fds_start = fds(proc.pid)
        traffic = Traffic(base, port, set(filter(None, args.only.split(","))))
        warm_up = min(args.warm_up, args.seconds / 2)
        run_load(traffic, args.clients, warm_up)
        time.sleep(4)  # at rest: in-flight buffers gone, pooled connections expired
        rss_start = rss_kib(proc.pid)
        started = time.monotonic()
        samples = run_load(traffic, args.clients, args.seconds, proc.pid)
        elapsed = time.monotonic() - started
        time.sleep(4)
        rss_end = rss_kib(proc.pid)
        fds_end = fds(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    total = sum(traffic.counts.values())
    errors = sum(traffic.errors.values())
    growth = (rss_end - rss_start) / rss_start * 100
    print(f"soak: {elapsed:.0f}s, {args.clients} clients, {total} requests "
          f"({', '.join(f'{k} {v}' for k, v in sorted(traffic.counts.items()))})")
    print(f"errors: {errors} (deliberate hang-ups, not counted: {traffic.counts['hang_up']})")
    for why, count in traffic.errors.most_common(5):
        print(f"  {count} x {why}")
    print(f"portico RSS at rest: {rss_start / 1024:.1f} MiB after warm-up, "
          f"{rss_end / 1024:.1f} MiB after the run ({growth:+.1f}%)")
    print(f"portico open fds at rest: {fds_start} before, {fds_end} after")
    print("RSS under load (MiB): " + " ".join(f"{kib / 1024:.1f}" for kib in samples))
    failed = errors > 0 or growth >= 10 or fds_end != fds_start
    print("soak: FAILED" if failed else "soak: passed (0 errors, RSS growth < 10%, fds equal)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
