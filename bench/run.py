"""``make bench``: nginx, HAProxy and portico in front of the same origin, measured with
wrk in one run.

Layout on a machine with 2+ cores: every proxy is pinned to CPU 0, the origin
(nginx) and wrk share CPU 1. Each proxy runs as one process (nginx: one worker;
HAProxy: one thread). All of them run for the whole bench, idle but for the one
under load, and each workload is measured on every proxy back to back, so that
the machine's changes of speed (on the VMs this runs on, the kernel's cost per
request can double from one second to the next) hit a pair alike. A ratio is the
median over the rounds of the pair's ratio in that round; the absolute figures
are medians too. CPU time of the proxy is read from /proc around every wrk run,
so throughput per proxy core, and user and system time per request, are known
even when CPU 1 (load and origin) is the bottleneck.
Results: a table on stdout, JSON and a PNG chart of the ratios in bench/results/.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from servers import (
    LOAD_CPU,
    PIN,
    PROXY_CPU,
    Running,
    pinned,
    start_floor,
    start_haproxy,
    start_nginx,
    start_origin,
    start_portico,
)

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 50
ROOT = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")

# Ten request headers a browser sends (besides Host).
BROWSER_HEADERS = [
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8",
    "Accept-Language: en-GB,en;q=0.9,de;q=0.8",
    "Accept-Encoding: gzip, deflate, br, zstd",
    "Referer: https://www.example.com/myapp/dashboard?tab=overview",
    "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; _ga=GA1.1.1234567890",
    "Cache-Control: no-cache",
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-Site: same-origin",
    "Upgrade-Insecure-Requests: 1",
]


class Workload:
    def __init__(self, name: str, path: str, target: float, per_core: bool = False,
                 headers: list[str] | None = None, post: bool = False,
                 scheme: str = "http") -> None:
        self.name = name
        self.path = path
        self.target = target  # portico / nginx, at least (0: no target)
        self.per_core = per_core  # compare throughput per proxy core, not per run
        self.headers = headers or []
        self.post = post
        self.scheme = scheme


WORKLOADS = [
    Workload("small GET", "/myapp/small", 0.80),
    Workload("small GET, 10 headers", "/myapp/small", 0.75, headers=BROWSER_HEADERS),
    Workload("16 KiB GET", "/myapp/16k", 0.90),
    Workload("1 MiB GET", "/myapp/big", 0.80, per_core=True),
    Workload("1 MiB POST", "/myapp/upload", 0.80, per_core=True, post=True),
    Workload("https small GET", "/myapp/small", 0.0, scheme="https"),
]
LATENCY_TARGET = 1.3  # portico's added p50 latency at most 1.3x nginx's
RSS_TARGET = 40.0
P99_TARGET = 1.5


def wrk(url: str, connections: int, seconds: int, headers: list[str] | None = None,
        script: Path | None = None) -> dict[str, float]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers or []:
        argv += ["-H", header]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(pinned(LOAD_CPU, [*argv, url]), capture_output=True, text=True,
                         check=True).stdout
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def percentile(p: str) -> float:
        found = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        return float(found.group(1)) * scale[found.group(2)] if found else 0.0

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    unit = {"B": 1 / 2**20, "KB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "requests": float(requests.group(1)) if requests else 0.0,
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "mib_s": float(transfer.group(1)) * unit.get(transfer.group(2), 1.0) if transfer else 0.0,
        "errors": float(errors.group(1)) if errors else 0.0,
        "socket_errors": 1.0 if "Socket errors" in out else 0.0,
    }


def family(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        found = []
        for parent in frontier:
            with contextlib.suppress(OSError):
                found += [int(p) for p in
                          Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        pids += found
        frontier = found
    return pids


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system time of a process and its descendants (workers), in seconds."""
    user = system = 0
    for member in family(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user / TICK, system / TICK


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory: the largest single process, and all of them together."""
    sizes = [_rss_of(member) for member in family(pid)]
    return {"max": max(sizes, default=0.0), "total": sum(sizes)}


def _rss_of(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(proxy: Running, workload: Workload, post_script: Path) -> dict[str, float]:
    port = proxy.tls_port if workload.scheme == "https" else proxy.port
    url = f"{workload.scheme}://127.0.0.1:{port}{workload.path}"
    (user0, system0), started = cpu_seconds(proxy.proc.pid), time.monotonic()
    result = wrk(url, CONNECTIONS, SECONDS, workload.headers,
                 post_script if workload.post else None)
    elapsed = time.monotonic() - started
    user1, system1 = cpu_seconds(proxy.proc.pid)
    cores = (user1 - user0 + system1 - system0) / elapsed
    result["cores"] = cores
    done = result["requests"]
    result["user_us"] = (user1 - user0) / done * 1e6 if done else 0.0
    result["system_us"] = (system1 - system0) / done * 1e6 if done else 0.0
    result["rps_per_core"] = result["rps"] / cores if cores else 0.0
    # wrk's Transfer/sec counts what it received; each POST sent 1 MiB.
    sent_or_received = result["rps"] if workload.post else result["mib_s"]
    result["mib_s_per_core"] = sent_or_received / cores if cores else 0.0
    return result


def one_connection_p50(url: str) -> float:
    return wrk(url, 1, max(3, SECONDS // 2))["p50_ms"]


Starter = Callable[[Path, int, "int | None"], Running]


def main() -> int:
    for tool in ("nginx", "haproxy", "wrk"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed; `make bench` installs it", file=sys.stderr)
            return 1
    work = Path(tempfile.mkdtemp(prefix="portico-bench-"))
    post_script = work / "post.lua"
    post_script.write_text('wrk.method = "POST"\nwrk.body = string.rep("x", 1048576)\n'
                           'wrk.headers["Content-Type"] = "application/octet-stream"\n')
    origin = start_origin(work)
    starters: dict[str, Starter] = {
        "nginx": start_nginx, "haproxy": start_haproxy, "portico": start_portico,
        "floor": start_floor,
    }
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in starters}
    direct: list[float] = []
    proxies: dict[str, Running] = {}
    try:
        for name, starter in starters.items():
            proxies[name] = starter(work, origin.port, PROXY_CPU)
            wrk(f"http://127.0.0.1:{proxies[name].port}/myapp/small", CONNECTIONS, 2)  # warm-up
        names = list(proxies)
        for number in range(ROUNDS):
            order = rotated(names, number)
            runs: dict[str, dict[str, dict[str, float]]] = {name: {} for name in names}
            for workload in WORKLOADS:
                for name in order:
                    runs[name][workload.name] = measure(proxies[name], workload, post_script)
            direct.append(one_connection_p50(f"http://127.0.0.1:{origin.port}/small"))
            for name in order:
                runs[name]["latency"] = {"p50_ms": one_connection_p50(
                    f"http://127.0.0.1:{proxies[name].port}/myapp/small")}
                runs[name]["rss"] = rss_mib(proxies[name].proc.pid)
                rounds[name].append(runs[name])
            print(f"round {number + 1} of {ROUNDS} done", file=sys.stderr, flush=True)
        for proxy in proxies.values():
            proxy.stop()
        proxies = {}
        scaling = [measure_scaling(work, origin.port) for _ in range(ROUNDS)]
    finally:
        for proxy in proxies.values():
            proxy.stop()
        origin.stop()
    results = {name: median_run(runs) for name, runs in rounds.items()}
    summary = {
        "seconds": SECONDS, "rounds": ROUNDS, "connections": CONNECTIONS, "pinned": PIN,
        "compiled": compiled(), "direct_p50_ms": statistics.median(direct),
        "median": results, "all_rounds": rounds,
        "scaling": {key: statistics.median(r[key] for r in scaling) for key in scaling[0]},
    }
    report(summary)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "results" / f"bench-{stamp}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"results: {out.relative_to(ROOT.parent)}")
    try:
        from chart import draw

        print(f"chart: {draw(summary, out.with_suffix('.png')).relative_to(ROOT.parent)}")
    except ImportError:
        print("chart: matplotlib is not installed (make bench installs it)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


def measure_scaling(work: Path, origin: int) -> dict[str, float]:
    """portico with 1 and with 2 workers, unpinned (on 2 cores the load shares them)."""
    figures: dict[str, float] = {}
    for workers in (1, 2):
        proxy = start_portico(work, origin, None, workers=workers)
        try:
            wrk(f"http://127.0.0.1:{proxy.port}/myapp/small", CONNECTIONS, 2)
            result = measure(proxy, WORKLOADS[0], work)
            if workers == 2:
                main, worker = main_and_worker_rss(proxy.proc.pid)
                figures["rss_main_2"], figures["rss_worker_2"] = main, worker
        finally:
            proxy.stop()
        figures[f"rps_{workers}"] = result["rps"]
        figures[f"cores_{workers}"] = result["cores"]
        figures[f"rps_per_core_{workers}"] = result["rps_per_core"]
    return figures


def main_and_worker_rss(pid: int) -> tuple[float, float]:
    """With workers: the main process's RSS, and the largest worker's."""
    workers = [_rss_of(member) for member in family(pid) if member != pid]
    return _rss_of(pid), max(workers, default=0.0)


def compiled() -> bool:
    import portico

    return portico.compiled()


def median_run(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    return {
        workload: {key: statistics.median(run[workload][key] for run in runs) for key in figures}
        for workload, figures in runs[0].items()
    }


def rotated(names: list[str], number: int) -> list[str]:
    """The order of round ``number``: each name goes first in turn."""
    shift = number % len(names)
    return names[shift:] + names[:shift]


def paired(summary: dict[str, object], name: str, workload: str, key: str) -> list[float]:
    """name / nginx in each round: the two were measured back to back."""
    rounds = summary["all_rounds"]
    assert isinstance(rounds, dict)
    return [run[workload][key] / base[workload][key] if base[workload][key] else 0.0
            for run, base in zip(rounds[name], rounds["nginx"], strict=True)]


def ratios(summary: dict[str, object]) -> dict[str, dict[str, float]]:
    """portico/nginx, haproxy/nginx and floor/nginx per workload (per core where the target
    says so): the median of the rounds' ratios."""
    out: dict[str, dict[str, float]] = {}
    for workload in WORKLOADS:
        key = "mib_s_per_core" if workload.per_core else "rps"
        out[workload.name] = {
            name: statistics.median(paired(summary, name, workload.name, key))
            for name in ("portico", "haproxy", "floor")
        }
    return out


def report(summary: dict[str, object]) -> None:
    median = summary["median"]
    assert isinstance(median, dict)
    how = (f"proxy pinned to CPU {PROXY_CPU}, origin and wrk to CPU {LOAD_CPU} (taskset)"
           if PIN else "unpinned (one CPU)")
    print(f"\nnginx, HAProxy and portico ({'compiled' if summary['compiled'] else 'pure Python'})"
          f", median of {ROUNDS} rounds (ratios: of the rounds' ratios), "
          f"wrk -t1 -c{CONNECTIONS} -d{SECONDS}s, {how}"
          "\nfloor: the least a Python proxy does (bench/floor.py), for reference")
    print(f"{'workload':<22} {'nginx':>9} {'haproxy':>9} {'portico':>9} {'ratio':>6} "
          f"{'target':>7}  {'p99 nginx/portico':>18}  {'portico cores':>13}  "
          f"{'floor':>9} {'ratio':>6}")
    ratio = ratios(summary)
    for workload in WORKLOADS:
        unit = "MiB/s/core" if workload.per_core else "req/s"
        key = "mib_s_per_core" if workload.per_core else "rps"
        n, h, p, f = (median[name][workload.name]
                      for name in ("nginx", "haproxy", "portico", "floor"))
        r = ratio[workload.name]["portico"]
        target = (f">={workload.target:.2f}" if workload.target else "-")
        met = "" if not workload.target else (" met" if r >= workload.target else " MISSED")
        print(f"{workload.name:<22} {n[key]:>9.0f} {h[key]:>9.0f} {p[key]:>9.0f} {r:>6.2f} "
              f"{target:>7}{met:<7} {n['p99_ms']:>6.2f}/{p['p99_ms']:.2f} ms  "
              f"{p['cores']:>9.2f}   {f[key]:>9.0f} {ratio[workload.name]['floor']:>6.2f}"
              f"  ({unit})")
    small = WORKLOADS[0].name
    per_round = paired(summary, "portico", small, "rps")
    print("small GET ratio per round (each pair measured back to back): "
          + " ".join(f"{r:.2f}" for r in per_round)
          + f", median {statistics.median(per_round):.2f}")
    print("CPU per small GET, user + system us (median; the system part is the machine's "
          "mood): " + ", ".join(f"{name} {median[name][small]['user_us']:.1f} + "
                                f"{median[name][small]['system_us']:.1f}" for name in median))
    p99 = statistics.median(paired(summary, "portico", small, "p99_ms"))
    print(f"p99 small GET: portico/nginx {p99:.2f} (target <= {P99_TARGET})")
    direct = float(summary["direct_p50_ms"])  # type: ignore[arg-type]
    added = {name: median[name]["latency"]["p50_ms"] - direct for name in median}
    print(f"1 connection, added p50 latency over direct {direct * 1000:.0f} us: " + ", ".join(
        f"{name} {value * 1000:.0f} us" for name, value in added.items())
        + (f"; portico/nginx {added['portico'] / added['nginx']:.2f} (target <= "
           f"{LATENCY_TARGET})" if added["nginx"] > 0 else ""))
    print("RSS after the run (largest process / all): " + ", ".join(
        f"{name} {median[name]['rss']['max']:.1f}/{median[name]['rss']['total']:.1f} MiB"
        for name in median) + f" (target <= {RSS_TARGET:.0f} MiB per process)")
    s = summary["scaling"]
    assert isinstance(s, dict)
    print(f"workers (unpinned, origin and wrk on the same 2 cores): 1 worker {s['rps_1']:.0f} "
          f"req/s on {s['cores_1']:.2f} cores, 2 workers {s['rps_2']:.0f} req/s on "
          f"{s['cores_2']:.2f} cores: x{s['rps_2'] / s['rps_1']:.2f} throughput, "
          f"req/s per core {s['rps_per_core_1']:.0f} -> {s['rps_per_core_2']:.0f}; RSS with 2 "
          f"workers: main {s['rss_main_2']:.1f} MiB, worker {s['rss_worker_2']:.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
