"""Dedicated views for metric-name conventions shared by the check families.

Each recogniser looks only at metric names, so a third-party check that follows the
same conventions gets the same views:

* ``column.<name>.<field>`` — per-column drift: one row per column, a bar per column;
* ``group.<group>.<metric>`` — per-group results: a table and bars with intervals;
* ``[<series>_]p<NN>_ms`` / ``max_ms`` — latency percentiles, as a ladder;
* ``<metric>_delta`` — candidate - baseline with intervals, around zero;
* ``importance.<feature>`` — feature importances, largest first.

:func:`specific_panels` returns the panels and the metric names they consumed, which
the generic metrics table then leaves out (unless gated) to stay readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..results import CheckResult, GateOutcome, Metric
from . import plots
from ._blocks import Image, Panel, Table, estimate
from ._format import fmt, fmt_interval, fmt_range
from .plots import Estimate

_COLUMN = re.compile(r"^column\.(?P<key>.+)\.(?P<field>[^.]+)$")
_GROUP = re.compile(r"^group\.(?P<key>.+)\.(?P<field>[^.]+)$")
_IMPORTANCE = re.compile(r"^importance\.(?P<key>.+)$")
_LATENCY = re.compile(r"^(?:(?P<series>[a-z0-9]+)_)?(?P<stat>p\d+(?:\.\d+)?|max|min)_ms$")
#: Fields that can serve as a drift column's score, in order of preference.
_SCORES = ("score", "statistic", "distance", "psi", "wasserstein", "jensen_shannon", "js", "stat")


@dataclass
class _Split:
    """Metrics ``<prefix>.<key>.<field>`` regrouped as key → field → metric."""

    by_key: dict[str, dict[str, Metric]]
    fields: list[str]
    names: set[str]


def _split(result: CheckResult, pattern: re.Pattern[str]) -> _Split:
    by_key: dict[str, dict[str, Metric]] = {}
    fields: dict[str, None] = {}
    names: set[str] = set()
    for name, m in result.metrics.items():
        match = pattern.match(name)
        if match:
            by_key.setdefault(match["key"], {})[match["field"]] = m
            fields.setdefault(match["field"])
            names.add(name)
    return _Split(by_key, list(fields), names)


def _value_cell(m: Metric | None) -> str:
    if m is None:
        return "—"
    interval = fmt_interval(m)
    return f"{fmt(m.value)} {interval}".strip()


def columns_panel(result: CheckResult) -> tuple[Panel | None, set[str]]:
    split = _split(result, _COLUMN)
    if not split.by_key:
        return None, set()
    rows, classes = [], []
    for column, fields in split.by_key.items():
        drifted = fields.get("drifted")
        rows.append([column, *[_value_cell(fields.get(f)) for f in split.fields]])
        classes.append("" if drifted is None else ("fail" if drifted.value >= 0.5 else "pass"))
    score = next((f for f in _SCORES if f in split.fields), None)
    score = score or next((f for f in split.fields if f not in ("drifted", "p_value", "threshold")), None)
    src = None
    if score is not None:
        bars = [
            (c, f[score].value, (f["drifted"].value >= 0.5) if "drifted" in f else None)
            for c, f in split.by_key.items()
            if score in f
        ]
        src = plots.column_bars(sorted(bars, key=lambda b: -b[1]), score)
    drifted_n = sum(1 for f in split.by_key.values() if "drifted" in f and f["drifted"].value >= 0.5)
    note = f"{drifted_n} of {len(split.by_key)} columns drifted." if "drifted" in split.fields else ""
    panel = Panel(
        "Per column",
        Image(src, f"{score} per column") if src else None,
        Table(["column", *split.fields], rows, classes),
        note=note,
    )
    return panel, split.names


def group_rows(result: CheckResult) -> tuple[list[str], list[list[str]]]:
    """The ``group.<group>.<metric>`` metrics of ``result`` as a table: metric names, and
    one row per group (the group, then each metric's value with its interval)."""
    split = _split(result, _GROUP)
    rows = [[group, *[_value_cell(fields.get(f)) for f in split.fields]] for group, fields in split.by_key.items()]
    return split.fields, rows


def groups_panel(result: CheckResult) -> tuple[Panel | None, set[str]]:
    split = _split(result, _GROUP)
    if not split.by_key:
        return None, set()
    _, rows = group_rows(result)
    bars = {
        f: [
            Estimate(g, fields[f].value, fields[f].lower, fields[f].upper)
            for g, fields in split.by_key.items()
            if f in fields
        ]
        for f in split.fields
    }
    src = plots.group_bars(bars)
    panel = Panel(
        "Per group",
        Image(src, "per-group metrics with intervals") if src else None,
        Table(["group", *split.fields], rows),
        note="Bars: estimate per group; whiskers: its confidence interval.",
    )
    return panel, split.names


def _percentile(stat: str) -> float:
    if stat == "min":
        return -1.0
    if stat == "max":
        return 101.0
    return float(stat[1:])


def latency_panel(result: CheckResult) -> Panel | None:
    gates = {g.metric: g for g in result.gates}
    series: dict[str, list[tuple[float, Estimate]]] = {}
    for name, m in result.metrics.items():
        match = _LATENCY.match(name)
        if match:
            label = match["stat"]
            series.setdefault(match["series"] or "", []).append(
                (_percentile(label), estimate(label, m, gates.get(name)))
            )
    points = {k: [e for _, e in sorted(v, key=lambda t: t[0])] for k, v in series.items() if len(v) >= 2}
    if not points:
        return None
    src = plots.ladder(points)
    labels = sorted({e.label for pts in points.values() for e in pts}, key=_percentile)
    rows = []
    for name, pts in points.items():
        by_label = {e.label: e for e in pts}
        cells = []
        for label in labels:
            e = by_label.get(label)
            interval = f" {fmt_range(e.lower, e.upper)}" if e and e.lower is not None else ""
            cells.append(f"{fmt(e.value)}{interval}" if e else "—")
        rows.append([name or "per request", *cells])
    return Panel(
        "Latency percentiles",
        Image(src, "latency percentiles") if src else None,
        Table(["series (ms)", *labels], rows),
        note="Milliseconds per request; bars: confidence intervals where reported; dashed: gate bounds.",
    )


def deltas_panel(result: CheckResult) -> Panel | None:
    gates: dict[str, GateOutcome] = {g.metric: g for g in result.gates}
    rows = [estimate(name, m, gates.get(name)) for name, m in result.metrics.items() if name.endswith("_delta")]
    if not rows:
        return None
    src = plots.forest(rows, xlabel="candidate - baseline")
    return Panel(
        "Candidate - baseline",
        Image(src, "deltas with intervals") if src else None,
        note="A delta's interval that excludes 0 is a difference the data supports; dashed "
        "ticks are gate bounds. For lower-is-better metrics (loss, error, ECE) a negative "
        "delta is an improvement.",
    )


def importance_panel(result: CheckResult) -> tuple[Panel | None, set[str]]:
    rows = []
    names = set()
    for name, m in result.metrics.items():
        match = _IMPORTANCE.match(name)
        if match:
            rows.append(Estimate(match["key"], m.value, m.lower, m.upper))
            names.add(name)
    if not rows:
        return None, set()
    src = plots.importance_bars(rows, "importance")
    ordered = sorted(rows, key=lambda e: abs(e.value), reverse=True)
    table = Table(
        ["feature", "importance", "interval"],
        [
            [
                e.label,
                fmt(e.value),
                fmt_range(e.lower, e.upper) if e.lower is not None else "",
            ]
            for e in ordered
        ],
    ).compact()
    return Panel("Feature importance", Image(src, "feature importance") if src else None, table), names


def specific_panels(result: CheckResult) -> tuple[list[Panel], set[str]]:
    """Every dedicated view that applies to ``result``, and the metrics they consumed."""
    panels: list[Panel] = []
    consumed: set[str] = set()
    for builder in (columns_panel, groups_panel, importance_panel):
        panel, names = builder(result)
        if panel is not None:
            panels.append(panel)
            consumed |= names
    for simple in (latency_panel, deltas_panel):
        panel = simple(result)
        if panel is not None:
            panels.append(panel)
    return panels, consumed
