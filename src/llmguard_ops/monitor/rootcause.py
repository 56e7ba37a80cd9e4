"""Root-cause hints of a window whose performance gate fired.

When a gate of a performance check (one whose definition is tagged ``model-performance``)
fires in a window, the ranked segments (``details["root_causes"]``) of the window's
checks tagged ``root-cause`` are kept in ``root_causes.json`` beside its report and
listed in ``monitor.json``; each segment says whether its column was found drifted
(``column.<c>.drifted`` = 1) by a check tagged ``column-drift`` of the same window.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..registry import Registry
from ..report import Report, atomic_write

ROOT_CAUSE_FILE = "root_causes.json"


def drifted_columns(report: Report, registry: Registry) -> list[str]:
    """Columns a ``column-drift`` check of the report found drifted (``column.<c>.drifted`` = 1)."""
    found: list[str] = []
    for check in report.checks:
        if not registry.tagged(check.uses, "column-drift"):
            continue
        for name, metric in check.metrics.items():
            if name.startswith("column.") and name.endswith(".drifted") and metric.value == 1.0:
                found.append(name[len("column.") : -len(".drifted")])
    return sorted(set(found))


def root_causes(report: Report, registry: Registry) -> dict[str, Any] | None:
    """The hints of a window, or None when no performance gate fired."""
    trigger = [
        f"{c.id}.{g.metric}"
        for c in report.checks
        if registry.tagged(c.uses, "model-performance")
        for g in c.failed_gates
    ]
    if not trigger:
        return None
    drifted = drifted_columns(report, registry)
    segments: list[dict[str, Any]] = []
    notes: list[str] = []
    rankers = [c for c in report.checks if registry.tagged(c.uses, "root-cause")]
    for check in rankers:
        if check.error is not None:
            notes.append(f"{check.id}: {check.error.message}")
            continue
        for seg in check.details.get("root_causes", []):
            segments.append({**seg, "check": check.id, "drifted": seg.get("column") in drifted})
    if not rankers:
        notes.append("the suite has no root-cause check (a check tagged root-cause): no segments ranked")
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
