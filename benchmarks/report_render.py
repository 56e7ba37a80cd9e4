"""How long report.html takes to render, and how big it gets: inline SVG vs PNG plots.

Run: ``python benchmarks/report_render.py [path/to/report.json]``. Without a path it
renders a synthetic report shaped like a full release suite (performance with deltas,
drift over 60 columns, fairness over 8 groups, latency, 30 feature importances). Each
variant is rendered ``REPEATS`` times after one warm-up (which pays matplotlib's import
and font cache); the table shows the median. The peer is the same page with PNG plots
at 144 dpi, the usual choice of report generators.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llmguard_ops.report import Report, read_report
from llmguard_ops.reporters import plots
from llmguard_ops.reporters.html import render_html

REPEATS = 5


def _metric(value: float, spread: float = 0.02) -> dict[str, Any]:
    return {"value": value, "lower": value - spread, "upper": value + spread, "confidence": 0.95}


def synthetic_report() -> Report:
    perf = {m: _metric(v) for m, v in {"accuracy": 0.81, "roc_auc": 0.86, "f1": 0.78, "ece": 0.03}.items()}
    perf.update({f"{m}_delta": _metric(0.01) for m in ("accuracy", "roc_auc", "f1", "ece")})
    drift = {}
    for i in range(60):
        drift[f"column.feature_{i}.statistic"] = {"value": 0.01 * (i % 13)}
        drift[f"column.feature_{i}.p_value"] = {"value": 0.9 / (1 + i % 13)}
        drift[f"column.feature_{i}.drifted"] = {"value": float(i % 13 > 9)}
    drift["share_drifted_columns"] = {"value": 0.23}
    bias = {
        f"group.sex={s}&age={a}.{m}": _metric(0.5 + 0.01 * k)
        for k, (s, a, m) in enumerate(
            (s, a, m)
            for s in ("f", "m")
            for a in ("18-29", "30-49", "50-64", "65+")
            for m in ("selection_rate", "true_positive_rate", "false_positive_rate")
        )
    }
    bias["demographic_parity_difference"] = _metric(0.04)
    latency = {f"p{p}_ms": _metric(10 + p / 10, 0.5) for p in (50, 90, 95, 99)}
    latency["max_ms"] = {"value": 25.0}
    explain = {f"importance.feature_{i}": _metric(1 / (1 + i), 0.01) for i in range(30)}

    def check(cid: str, uses: str, metrics: dict[str, Any], gate: str, bound: dict[str, float]) -> dict[str, Any]:
        value = metrics[gate]["value"]
        return {
            "id": cid,
            "uses": uses,
            "plugin": "bench",
            "severity": "blocker",
            "status": "pass",
            "metrics": metrics,
            "details": {"samples_ms": [10 + (i % 37) / 3 for i in range(500)]},
            "gates": [{"metric": gate, **bound, "value": value, "passed": True, "reason": "ok"}],
        }

    return Report.model_validate(
        {
            "run_id": "bench",
            "started_at": "2026-01-01T00:00:00Z",
            "finished_at": "2026-01-01T00:01:00Z",
            "duration_s": 60.0,
            "suite": {
                "name": "bench",
                "path": "suite.yaml",
                "sha256": "0" * 64,
                "api_version": "llmguard/v1",
                "seed": 0,
            },
            "decision": {"decision": "PROMOTE", "reasons": [], "exit_code": 0},
            "checks": [
                check("quality", "performance.classification", perf, "accuracy", {"min": 0.75}),
                check("drift", "drift.tabular", drift, "share_drifted_columns", {"max": 0.5}),
                check(
                    "fairness",
                    "bias.group_fairness",
                    bias,
                    "demographic_parity_difference",
                    {"max": 0.1},
                ),
                check("latency", "latency.inference", latency, "p99_ms", {"max": 50.0}),
                check("explain", "explain.shap", explain, "importance.feature_0", {"min": 0.0}),
            ],
        }
    )


def measure(report: Report, source: Path, fmt: str) -> tuple[float, int]:
    plots.IMAGE_FORMAT = fmt
    render_html(report, source)  # warm-up: imports, font cache
    times, size = [], 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        html = render_html(report, source)
        times.append(time.perf_counter() - t0)
        size = len(html.encode("utf-8"))
    return statistics.median(times), size


def main() -> None:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
        report, source, label = read_report(path), path.parent, str(path)
    else:
        report, source, label = (
            synthetic_report(),
            Path(tempfile.mkdtemp()),
            "synthetic full-suite report",
        )
    t0 = time.perf_counter()
    import matplotlib.figure  # noqa: F401

    print(f"report: {label}; matplotlib import {time.perf_counter() - t0:.2f}s (paid once per run)")
    print(f"{'plots':<12} {'render (median)':>16} {'page size':>12}")
    for fmt in ("svg", "png"):
        seconds, size = measure(report, source, fmt)
        print(f"{fmt:<12} {seconds:>15.3f}s {size / 1024:>10.0f} KiB")


if __name__ == "__main__":
    main()
