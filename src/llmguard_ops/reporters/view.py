"""What the HTML report shows, computed from a :class:`~llmguard_ops.report.Report`.

The page is rendered *generically*: any check, first party or not, gets a metrics table
with intervals and gate bounds, a plot of its gated metrics against their bounds,
tables of the ``details`` that are lists of records, and the images it listed in
``artifacts``. Metric names that follow the shared conventions get a dedicated view on
top (see :mod:`.panels`): ``column.<name>.*`` (drift per column), ``group.<g>.*``
(fairness per group), ``*_ms`` percentiles (latency), ``*_delta`` (candidate - baseline),
``importance.<feature>`` (explanations).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import sha256_file
from ..report import Report
from ..results import CheckResult, GateOutcome, Status
from . import plots
from ._blocks import Image, Panel, Table, estimate
from ._format import fmt, fmt_interval
from .panels import specific_panels
from .plots import Estimate

__all__ = ["Image", "Panel", "Table", "estimate", "fmt", "fmt_interval"]  # shared pieces, re-exported

IMAGE_TYPES = {
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
MAX_IMAGE_BYTES = 8 * 2**20
MAX_ROWS = 50
VERIFY_COMMAND = "llmguard verify attestation.dsse.json --key PUBLIC_KEY"


def fmt_bound(g: GateOutcome) -> str:
    parts = []
    if g.min is not None:
        parts.append(f"≥ {fmt(g.min)}")
    if g.max is not None:
        parts.append(f"≤ {fmt(g.max)}")
    text = " and ".join(parts)
    if g.confidence is not None:
        text += f" (whole {g.confidence:.0%} interval)"
    return text


def fmt_tested(g: GateOutcome) -> str:
    parts = []
    if g.tested_low is not None:
        parts.append(fmt(g.tested_low))
    if g.tested_high is not None and g.tested_high != g.tested_low:
        parts.append(fmt(g.tested_high))
    return " / ".join(parts) or fmt(g.value)


@dataclass
class CheckView:
    result: CheckResult
    anchor: str
    gates: Table | None
    metrics: Table | None
    panels: list[Panel]
    details: Table | None
    params: str


def _records_table(records: list[dict[str, Any]]) -> Table:
    headers: dict[str, None] = {}
    for record in records:
        for key in record:
            headers.setdefault(str(key))
    rows = [[_cell(r.get(h)) for h in headers] for r in records[:MAX_ROWS]]
    note = f"first {MAX_ROWS} of {len(records)} rows" if len(records) > MAX_ROWS else ""
    return Table(list(headers), rows, note=note)


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 160 else text[:157] + "…"
    return fmt(value)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def metrics_table(result: CheckResult, names: Sequence[str]) -> Table | None:
    gates = {g.metric: g for g in result.gates}
    if not names:
        return None
    rows, classes = [], []
    for name in names:
        m = result.metrics[name]
        g = gates.get(name)
        rows.append(
            [
                name,
                fmt(m.value),
                fmt_interval(m),
                m.interval_method or "",
                fmt(m.p_value),
                fmt(m.n),
                m.unit or "",
            ]
        )
        classes.append("" if g is None else ("pass" if g.passed else "fail"))
    return Table(["metric", "value", "interval", "method", "p-value", "n", "unit"], rows, classes).compact()


def gates_table(result: CheckResult) -> Table | None:
    if not result.gates:
        return None
    rows = [
        [
            g.metric,
            fmt(g.value),
            fmt_bound(g),
            fmt_tested(g),
            g.reason,
            "pass" if g.passed else "fail",
        ]
        for g in result.gates
    ]
    return Table(
        ["metric", "value", "bound", "tested", "outcome", ""],
        rows,
        ["pass" if g.passed else "fail" for g in result.gates],
    )


def details_view(result: CheckResult) -> tuple[Table | None, list[Panel]]:
    """Scalars as one key/value table; records, mappings and samples as their own panels."""
    scalars: list[list[str]] = []
    panels: list[Panel] = []
    for key, value in result.details.items():
        if value is None or isinstance(value, str | bool | int | float):
            scalars.append([key, fmt(value)])
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            panels.append(Panel(title=key, table=_records_table(value)))
        elif isinstance(value, list) and len(value) >= 20 and all(_is_number(v) for v in value):
            markers = {
                n.removesuffix("_ms"): result.metrics[n].value
                for n in ("p50_ms", "p95_ms", "p99_ms")
                if n in result.metrics
            }
            src = plots.histogram([float(v) for v in value], key, markers)
            panels.append(
                Panel(
                    title=f"{key} (distribution of {len(value)} samples)",
                    image=Image(src, f"histogram of {key}") if src else None,
                    note="" if src else f"{len(value)} samples; min {fmt(min(value))}, max {fmt(max(value))}",
                )
            )
        elif isinstance(value, list) and all(isinstance(v, str | int | float | bool) or v is None for v in value):
            scalars.append(
                [
                    key,
                    ", ".join(fmt(v) for v in value[:MAX_ROWS]) + (" …" if len(value) > MAX_ROWS else ""),
                ]
            )
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, str | int | float | bool) or v is None for v in value.values())
        ):
            panel = Panel(title=key, table=Table([key, "value"], [[str(k), fmt(v)] for k, v in value.items()]))
            if "importance" in key.lower() and all(_is_number(v) for v in value.values()):
                src = plots.importance_bars([Estimate(str(k), float(v)) for k, v in value.items()], key)
                panel.image = Image(src, f"bar chart of {key}") if src else None
            panels.append(panel)
        elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            records = [{"": str(k), **v} for k, v in value.items()]
            panels.append(Panel(title=key, table=_records_table(records)))
        else:
            text = json.dumps(value, indent=2, sort_keys=True, default=str)
            panels.append(Panel(title=key, pre=text if len(text) <= 4000 else text[:4000] + "\n…"))
    table = Table(["detail", "value"], scalars) if scalars else None
    return table, panels


def resolve_artifact(path: str, source_dir: Path, check_id: str) -> Path | None:
    """The artifact file, if it lies inside the run's output folder (nothing else is read)."""
    p = Path(path)
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, source_dir / p]
    candidates.append(source_dir / "artifacts" / check_id / p.name)
    root = source_dir.resolve()
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except OSError:
            continue
        if resolved.is_file() and resolved.is_relative_to(root):
            return resolved
    return None


def artifacts_view(result: CheckResult, source_dir: Path) -> tuple[list[Image], list[list[str]]]:
    """Images to embed inline, and a digest row for every artifact file."""
    import base64

    images: list[Image] = []
    rows: list[list[str]] = []
    for label, path in result.artifacts.items():
        found = resolve_artifact(path, source_dir, result.id)
        if found is None:
            rows.append([result.id, label, path, "missing (not under the output folder)", ""])
            continue
        size = found.stat().st_size
        rows.append([result.id, label, _relative(found, source_dir), sha256_file(found), f"{size:,} B"])
        mime = IMAGE_TYPES.get(found.suffix.lower())
        if mime and size <= MAX_IMAGE_BYTES:
            data = base64.b64encode(found.read_bytes()).decode("ascii")
            images.append(Image(f"data:{mime};base64,{data}", label, label))
    return images, rows


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def check_view(result: CheckResult, source_dir: Path) -> CheckView:
    panels, consumed = specific_panels(result)
    gated = [g.metric for g in result.gates]
    names = gated + [n for n in result.metrics if n not in gated and n not in consumed]
    if result.gates:
        metrics = {g.metric: result.metrics[g.metric] for g in result.gates if g.metric in result.metrics}
        src = plots.gate_strip(
            [estimate(name, metrics[name], g) for name, g in ((g.metric, g) for g in result.gates) if name in metrics]
        )
        if src:
            panels.insert(
                0,
                Panel(
                    "Gated metrics against their bounds",
                    Image(src, f"gated metrics of {result.id} with intervals and bounds"),
                    note="Dot: estimate; bar: confidence interval; dashed line: gate bound; "
                    "shaded: where the gate fails.",
                ),
            )
    details, detail_panels = details_view(result)
    images, _ = artifacts_view(result, source_dir)
    panels += detail_panels
    panels += [Panel(f"artifact: {img.caption}", image=img) for img in images]
    params = json.dumps(result.params, indent=2, sort_keys=True, default=str) if result.params else ""
    return CheckView(
        result=result,
        anchor="check-" + "".join(c if c.isalnum() else "-" for c in result.id),
        gates=gates_table(result),
        metrics=metrics_table(result, names),
        panels=panels,
        details=details,
        params=params,
    )


def failed_gates_table(report: Report) -> Table | None:
    rows, classes = [], []
    for c in report.checks:
        for g in c.failed_gates:
            m = c.metrics.get(g.metric)
            rows.append(
                [
                    c.id,
                    c.severity.value,
                    g.metric,
                    fmt(g.value),
                    fmt_interval(m) if m else "",
                    fmt_bound(g),
                    fmt_tested(g),
                    "waived" if c.waiver else c.status.value,
                ]
            )
            classes.append("waived" if c.waiver else ("fail" if c.status is Status.FAIL else "warn"))
    if not rows:
        return None
    return Table(
        ["check", "severity", "metric", "value", "interval", "gate", "tested", "status"],
        rows,
        classes,
    )


def overview_plot(report: Report) -> str | None:
    rows = []
    for c in report.checks:
        for g in c.gates:
            m = c.metrics.get(g.metric)
            if m is not None:
                rows.append(estimate(f"{c.id} · {g.metric}", m, g))
    return plots.gate_strip(rows)
