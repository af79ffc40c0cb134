"""``make bench-http2``: HTTP/2 small GETs (``h2load -c 10 -m 10``) through portico and
through nginx (``http2`` on its TLS listener), both over TLS with ALPN ``h2``, in front of
the same nginx origin, in the same run; prints req/s and the ratio portico/nginx
(target >= 0.5) and writes bench/results/h2.json."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from servers import LOAD_CPU, PROXY_CPU, pinned, start_nginx, start_origin, start_portico

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
ROUNDS = 3
TARGET = 0.5


def h2load(port: int, requests: int) -> float:
    out = subprocess.run(
        pinned(LOAD_CPU, ["h2load", "-n", str(requests), "-c", "10", "-m", "10",
                          f"https://127.0.0.1:{port}/myapp/small"]),
        capture_output=True, text=True, timeout=600).stdout
    done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
    if done is None or done.group(2) != str(requests):
        raise RuntimeError(f"h2load did not finish cleanly:\n{out}")
    rate = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    assert rate is not None, out
    return float(rate.group(1))


def main() -> int:
    if shutil.which("h2load") is None or shutil.which("nginx") is None:
        print("bench-http2 needs h2load (nghttp2-client) and nginx: make bench-deps")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        origin = start_origin(work)
        proxies = {"nginx": start_nginx(work, origin.port, PROXY_CPU),
                   "portico": start_portico(work, origin.port, PROXY_CPU)}
        try:
            for proxy in proxies.values():
                h2load(proxy.tls_port, 2_000)  # warm up: connections, pool, caches
            rounds: dict[str, list[float]] = {name: [] for name in proxies}
            for _ in range(ROUNDS):  # alternating, so both see the same machine
                for name, proxy in proxies.items():
                    rounds[name].append(h2load(proxy.tls_port, REQUESTS))
        finally:
            for proxy in proxies.values():
                proxy.stop()
            origin.stop()
    best = {name: sorted(rates)[len(rates) // 2] for name, rates in rounds.items()}
    ratio = best["portico"] / best["nginx"]
    print(f"h2load -c 10 -m 10, {REQUESTS} small GETs over TLS (h2), median of {ROUNDS}:")
    for name, rate in best.items():
        print(f"  {name:<8} {rate:>10.0f} req/s")
    print(f"  portico/nginx {ratio:.2f} (target >= {TARGET})")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "h2.json").write_text(json.dumps({"rounds": rounds, "median": best,
                                                 "ratio": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
