"""The ratios of a ``make bench`` run as a PNG bar chart (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from run import WORKLOADS, ratios


def draw(summary: dict[str, Any], out: Path) -> Path:
    ratio = ratios(summary)
    names = [w.name for w in WORKLOADS]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.38
    ax.bar([i - width / 2 for i in x], [ratio[n]["portico"] for n in names], width,
           label="portico / nginx", color="#2b6cb0")
    ax.bar([i + width / 2 for i in x], [ratio[n]["haproxy"] for n in names], width,
           label="HAProxy / nginx", color="#a0aec0")
    for i, workload in enumerate(WORKLOADS):
        if workload.target:
            ax.hlines(workload.target, i - 0.45, i + 0.45, colors="#c53030", linestyles="--")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), [n + ("\n(per core)" if w.per_core else "")
                            for n, w in zip(names, WORKLOADS, strict=True)], fontsize=8)
    ax.set_ylabel("throughput relative to nginx")
    kind = "compiled" if summary["compiled"] else "pure Python"
    ax.set_title(f"portico ({kind}) and HAProxy vs nginx, median of {summary['rounds']} "
                 f"rounds; dashed: portico's target")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
