"""``make bench-budget``: how much user time per request a Python proxy may spend on its
features and still reach a throughput ratio against nginx, on this machine, now.

The floor (floor.py: uvloop + httptools, no features) is run with 0, 1, 2, 4 and
6 us of busy user time added to every small GET, beside nginx and portico, each
measured back to back in every round (run.py's layout and pinning). The added
time stands for any design's feature work, without its cache or allocation
effects, so the budget it gives is an upper bound. The answer depends on the
kernel's cost per request, which on a VM changes from one minute, even one
second, to the next: the table shows it (system us per request) beside each
figure, and a run where nginx and the bare floor met different kernel costs
says so and gives no budget.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from run import CONNECTIONS, ROUNDS, SECONDS, WORKLOADS, measure, paired, rotated, wrk
from servers import PIN, PROXY_CPU, Running, start_floor, start_nginx, start_origin, start_portico

SPINS_US = (0.0, 1.0, 2.0, 4.0, 6.0)
SAME_MODE = 1.3  # system time per request of nginx and the bare floor within this factor
TARGET = WORKLOADS[0].target  # small GET, portico / nginx


def budget(points: list[tuple[float, float]], target: float) -> float | None:
    """The added user time at which the ratio falls to ``target`` (linear between points)."""
    for (spin_a, ratio_a), (spin_b, ratio_b) in itertools.pairwise(points):
        if ratio_a >= target >= ratio_b and ratio_a != ratio_b:
            return spin_a + (ratio_a - target) * (spin_b - spin_a) / (ratio_a - ratio_b)
    if points and points[0][1] < target:
        return 0.0  # not even the bare floor reaches it
    return None  # still above the target at the largest added time


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="portico-budget-"))
    origin = start_origin(work)
    proxies: dict[str, Running] = {}
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {}
    small = WORKLOADS[0]
    try:
        proxies["nginx"] = start_nginx(work, origin.port, PROXY_CPU)
        proxies["portico"] = start_portico(work, origin.port, PROXY_CPU)
        for spin in SPINS_US:
            proxies[f"floor+{spin:g}us"] = start_floor(work, origin.port, PROXY_CPU, spin)
        for proxy in proxies.values():
            wrk(f"http://127.0.0.1:{proxy.port}{small.path}", CONNECTIONS, 2)  # warm-up
        names = list(proxies)
        rounds = {name: [] for name in names}
        for number in range(ROUNDS):
            for name in rotated(names, number):
                rounds[name].append({small.name: measure(proxies[name], small, work)})
            print(f"round {number + 1} of {ROUNDS} done", file=sys.stderr, flush=True)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        origin.stop()

    def ratio(name: str) -> float:
        return statistics.median(paired({"all_rounds": rounds}, name, small.name, "rps"))

    def median(name: str, key: str) -> float:
        return statistics.median(run[small.name][key] for run in rounds[name])

    how = f"pinned to CPU {PROXY_CPU}" if PIN else "unpinned"
    print(f"\nsmall GET, wrk -t1 -c{CONNECTIONS} -d{SECONDS}s, median of {ROUNDS} rounds, "
          f"each proxy {how}, measured back to back")
    print(f"{'proxy':<14} {'req/s':>9} {'/ nginx':>8} {'user us':>8} {'system us':>10}")
    for name in rounds:
        print(f"{name:<14} {median(name, 'rps'):>9.0f} {ratio(name):>8.2f} "
              f"{median(name, 'user_us'):>8.2f} {median(name, 'system_us'):>10.2f}")
    floor_user = median("floor+0us", "user_us")
    points = [(median(f"floor+{s:g}us", "user_us") - floor_user, ratio(f"floor+{s:g}us"))
              for s in SPINS_US]
    spent = median("portico", "user_us") - floor_user
    kernel = sorted((median("nginx", "system_us"), median("floor+0us", "system_us")))
    same_mode = kernel[1] <= SAME_MODE * kernel[0]
    allowed = budget(points, TARGET) if same_mode else None
    if not same_mode:
        print(f"no budget: nginx and the bare floor met different kernel costs (system "
              f"{median('nginx', 'system_us'):.1f} against {median('floor+0us', 'system_us'):.1f}"
              " us per request); run again")
    else:
        verdict = (f"more than {points[-1][0]:.1f} us (the largest tried)" if allowed is None
                   else f"{allowed:.1f} us")
        print(f"features may cost {verdict} of user time per request beyond the floor's "
              f"{floor_user:.1f} us for {TARGET:.2f}x nginx here")
    print(f"portico spends {spent:.1f} us beyond the floor")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(__file__).resolve().parent / "results" / f"budget-{stamp}.json"
    out.write_text(json.dumps({
        "seconds": SECONDS, "rounds": ROUNDS, "pinned": PIN, "target": TARGET,
        "all_rounds": rounds, "points_us_ratio": points, "same_kernel_mode": same_mode,
        "budget_us": allowed,
        "portico_beyond_floor_us": spent,
    }, indent=2))
    print(f"results: {out.relative_to(out.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
