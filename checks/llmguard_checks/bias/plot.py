"""A per-group chart for reviewers: rates with their bootstrap intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llmguard_ops import CheckOutput


def plot_group_rates(out: CheckOutput, grouping: dict[str, Any], path: Path) -> Path:
    """Selection rate and TPR of every included group, intervals as error bars.

    The reference group's rate is drawn as a dashed line, so the gap of each group to it
    reads off directly. Uses matplotlib's object API (no pyplot state, no display needed).
    """
    from matplotlib.figure import Figure

    rows = [r for r in grouping["groups"] if r["included"]]
    panels = [m for m in ("selection_rate", "true_positive_rate") if any(r.get(m) is not None for r in rows)]
    fig = Figure(figsize=(4.2 * len(panels) + 1.5, 0.45 * len(rows) + 1.6), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    names = [r["group"] for r in rows]
    for ax, metric in zip(axes, panels, strict=True):
        for y, row in enumerate(rows):
            m = out.metrics.get(f"group.{row['group']}.{metric}")
            if m is None:
                continue
            err = None
            if m.lower is not None and m.upper is not None:
                err = [[m.value - m.lower], [m.upper - m.value]]
            color = "tab:red" if row["reference"] else "tab:blue"
            ax.errorbar(m.value, y, xerr=err, fmt="o", color=color, capsize=3)
            if row["reference"]:
                ax.axvline(m.value, color=color, linestyle="--", linewidth=0.8)
        ax.set_title(metric.replace("_", " "))
        ax.set_xlim(0, 1)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)), names)
    axes[0].invert_yaxis()
    fig.suptitle(f"{' x '.join(grouping['columns'])}: reference {grouping['reference_group']} (red)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
