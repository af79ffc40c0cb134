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
    width = 0.28
    for offset, name, label, color in (
        (-width, "portico", "portico / nginx", "#2b6cb0"),
        (0.0, "haproxy", "HAProxy / nginx", "#a0aec0"),
        (width, "floor", "Python floor (bench/floor.py) / nginx", "#c6f6d5"),
    ):
        ax.bar([i + offset for i in x], [ratio[n][name] for n in names], width,
               label=label, color=color)
    for i, workload in enumerate(WORKLOADS):
        if workload.target:
            ax.hlines(workload.target, i - 0.45, i + 0.45, colors="#c53030", linestyles="--")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(x), [n + ("\n(per core)" if w.per_core else "")
                            for n, w in zip(names, WORKLOADS, strict=True)], fontsize=8)
    ax.set_ylabel("throughput relative to nginx")
    kind = "compiled" if summary["compiled"] else "pure Python"
    ax.set_title(f"portico ({kind}), HAProxy and the Python floor vs nginx: median of "
                 f"{summary['rounds']} rounds' back-to-back ratios; dashed: portico's target",
                 fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
