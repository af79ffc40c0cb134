"""``python bench/metrics.py``: portico with ``[metrics]`` off and on, same origin, same
run: small GETs with wrk, rounds alternating which goes first; the median req/s of
each and their ratio (docs/guide/metrics.md: on costs under 2 %).

``BENCH_SECONDS`` (default 10) per measurement, ``BENCH_ROUNDS`` (default 5).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from run import wrk
from servers import PROXY_CPU, start_origin, start_portico

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONNECTIONS = 32


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed; `make bench-deps` installs it", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="portico-metrics-bench-"))
    origin = start_origin(work)
    proxies = {
        "off": start_portico(work, origin.port, PROXY_CPU, name="off"),
        "on": start_portico(work, origin.port, PROXY_CPU, name="on",
                            extra="[metrics]\nenabled = true\n"),
    }
    rps: dict[str, list[float]] = {name: [] for name in proxies}
    try:
        for proxy in proxies.values():
            wrk(f"http://127.0.0.1:{proxy.port}/myapp/small", CONNECTIONS, 2)  # warm-up
        for number in range(ROUNDS):
            order = ["off", "on"] if number % 2 == 0 else ["on", "off"]
            for name in order:
                url = f"http://127.0.0.1:{proxies[name].port}/myapp/small"
                result = wrk(url, CONNECTIONS, SECONDS)
                assert not result["errors"] and not result["socket_errors"], result
                rps[name].append(result["rps"])
            print(f"round {number + 1} of {ROUNDS}: off {rps['off'][-1]:.0f}, "
                  f"on {rps['on'][-1]:.0f} req/s", file=sys.stderr, flush=True)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        origin.stop()
        shutil.rmtree(work, ignore_errors=True)
    off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
    paired = statistics.median(b / a for a, b in zip(rps["off"], rps["on"], strict=True))
    print(f"metrics off {off:.0f} req/s, on {on:.0f} req/s (medians of {ROUNDS} x {SECONDS}s); "
          f"on/off {on / off:.3f}, paired per round {paired:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
