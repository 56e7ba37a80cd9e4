"""Root-cause hints of a window whose performance gate fired.

When a gate of a performance check (``performance.*``, ``monitor.cbpe`` or
``monitor.root_cause`` itself) fires in a window, the ranked segments of the window's
``monitor.root_cause`` checks are kept in ``root_causes.json`` beside its report and
listed in ``monitor.json``; each segment says whether its column was found drifted by
a ``drift.tabular`` check of the same window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..report import Report, atomic_write

ROOT_CAUSE_FILE = "root_causes.json"
PERFORMANCE_CHECKS = ("monitor.cbpe", "monitor.root_cause")


def _is_performance(uses: str) -> bool:
    return uses.startswith("performance.") or uses in PERFORMANCE_CHECKS


def drifted_columns(report: Report) -> list[str]:
    """Columns a ``drift.tabular`` check of the report found drifted (``column.<c>.drifted`` = 1)."""
    found: list[str] = []
    for check in report.checks:
        if check.uses != "drift.tabular":
            continue
        for name, metric in check.metrics.items():
            if name.startswith("column.") and name.endswith(".drifted") and metric.value == 1.0:
                found.append(name[len("column.") : -len(".drifted")])
    return sorted(set(found))


def root_causes(report: Report) -> dict[str, Any] | None:
    """The hints of a window, or None when no performance gate fired."""
    trigger = [f"{c.id}.{g.metric}" for c in report.checks if _is_performance(c.uses) for g in c.failed_gates]
    if not trigger:
        return None
    drifted = drifted_columns(report)
    segments: list[dict[str, Any]] = []
    notes: list[str] = []
    for check in report.checks:
        if check.uses != "monitor.root_cause":
            continue
        if check.error is not None:
            notes.append(f"{check.id}: {check.error.message}")
            continue
        for seg in check.details.get("root_causes", []):
            segments.append({**seg, "check": check.id, "drifted": seg.get("column") in drifted})
    if not any(c.uses == "monitor.root_cause" for c in report.checks):
        notes.append("the suite has no monitor.root_cause check: no segments ranked")
    segments.sort(key=lambda s: -float(s.get("contribution", 0.0)))
    return {"trigger": trigger, "drifted_columns": drifted, "segments": segments, "notes": notes}


def save(folder: Path, hints: dict[str, Any]) -> None:
    atomic_write(folder / ROOT_CAUSE_FILE, json.dumps(hints, indent=2, sort_keys=True) + "\n")


def load(folder: Path) -> dict[str, Any] | None:
    path = folder / ROOT_CAUSE_FILE
    if not path.is_file():
        return None
    hints: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return hints
