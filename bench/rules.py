"""What 20 rewrite rules on a route cost: portico with them against portico without,
in the same run (issue 20: at most 5% of req/s).

Two measures, both alternating the two configs so that a busy machine slows both alike:

- in process (default): the real request path on fake transports (as bench/hotpath.py),
  two gateways side by side, CPU time per request over alternating batches;
- ``--wrk``: two real ``portico run`` processes pinned to the same core, behind them the
  bench's nginx origin, ``wrk`` against each in turn for BENCH_SECONDS, BENCH_ROUNDS rounds.

Prints the figures and exits 1 when the rules cost more than 5%.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))
from hotpath import CONFIG, REQUEST, RESPONSE, RULES  # noqa: E402

BUDGET = 0.05
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def in_process(batches: int = 200, batch: int = 1000) -> tuple[float, float]:
    """(µs of CPU per request without rules, with them): medians over alternating batches."""
    from tests.support.harness import CountingTransport, idle_upstream

    from portico import memory
    from portico.config.compile import serving_plan
    from portico.config.load import parse
    from portico.config.provision import build_gateway
    from portico.server.protocol import ClientConnection

    loop = asyncio.new_event_loop()
    runners = []
    for config in (CONFIG, CONFIG + RULES):
        gateway = build_gateway(serving_plan(parse(config, "bench"), Path.cwd(), Path.cwd()), loop)
        client = ClientConnection(gateway)
        client.connection_made(CountingTransport(("127.0.0.1", 50000), ("127.0.0.1", 8080)))
        upstream, _ = idle_upstream(gateway, 0, CountingTransport(("127.0.0.1", 9),
                                                                    ("127.0.0.1", 40000)))

        def one(client: Any = client, upstream: Any = upstream) -> None:
            client.data_received(REQUEST)
            upstream.data_received(RESPONSE)

        for _ in range(1000):
            one()
        runners.append(one)
    memory.settle()
    times: list[list[float]] = [[], []]
    for number in range(batches):
        for which in (0, 1) if number % 2 == 0 else (1, 0):
            one = runners[which]
            started = time.process_time()
            for _ in range(batch):
                one()
            times[which].append((time.process_time() - started) / batch * 1e6)
    return statistics.median(times[0]), statistics.median(times[1])


def with_wrk() -> tuple[float, float]:
    """(req/s without rules, with them): medians of alternating wrk rounds."""
    from run import CONNECTIONS, wrk
    from servers import PROXY_CPU, free_port, pinned, start_origin, wait_port

    work = Path(tempfile.mkdtemp(prefix="portico-bench-rules-"))
    origin = start_origin(work)
    procs = []
    ports = []
    try:
        for name, extra in (("plain", ""), ("rules", RULES)):
            port = free_port()
            conf = work / f"{name}.toml"
            body = CONFIG.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{port}")
            body = body.replace("http://127.0.0.1:9/", f"http://127.0.0.1:{origin.port}/")
            conf.write_text(body.replace('access_log = "/dev/null"', "access_log = \"off\"")
                            + extra)
            procs.append(subprocess.Popen(
                pinned(PROXY_CPU, [sys.executable, "-m", "portico", "run", "-c", str(conf)]),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "PORTICO_STATE_DIR": str(work / name)}))
            wait_port(port)
            ports.append(port)
            wrk(f"http://127.0.0.1:{port}/myapp/small", CONNECTIONS, 2)  # warm-up
        rps: list[list[float]] = [[], []]
        for number in range(ROUNDS):
            for which in (0, 1) if number % 2 == 0 else (1, 0):
                result = wrk(f"http://127.0.0.1:{ports[which]}/myapp/small", CONNECTIONS, SECONDS)
                rps[which].append(result["rps"])
        return statistics.median(rps[0]), statistics.median(rps[1])
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        origin.stop()


def main() -> int:
    plain, rules = in_process()
    cost = rules / plain - 1
    print(f"in process: {plain:.2f} us/request without rules, {rules:.2f} with 20 "
          f"({cost:+.1%} CPU, req/s ratio {plain / rules:.3f})")
    failed = cost > BUDGET
    if "--wrk" in sys.argv:
        plain_rps, rules_rps = with_wrk()
        ratio = rules_rps / plain_rps
        print(f"wrk: {plain_rps:,.0f} req/s without rules, {rules_rps:,.0f} with 20 "
              f"(ratio {ratio:.3f}; {SECONDS}s x {ROUNDS} rounds each)")
        failed = failed or ratio < 1 - BUDGET
    print("over the 5% budget" if failed else "within the 5% budget")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
