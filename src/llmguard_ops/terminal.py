"""Plain-text terminal output: progress lines and the end-of-run summary."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .report import Report
from .results import CheckResult, Status

_MARK = {Status.PASS: "PASS", Status.FAIL: "FAIL", Status.WARN: "WARN", Status.ERROR: "ERROR", Status.SKIP: "SKIP"}


def _metric_line(result: CheckResult, limit: int = 4) -> str:
    gated = [g.metric for g in result.gates]
    names = gated + [n for n in result.metrics if n not in gated]
    parts = []
    for name in names[:limit]:
        m = result.metrics[name]
        ci = f" [{m.lower:.4g}, {m.upper:.4g}]" if m.has_interval else ""
        parts.append(f"{name}={m.value:.4g}{ci}")
    return ", ".join(parts)


class TerminalProgress:
    """One line per check as it finishes (plain text; safe for CI logs)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if self.quiet:
            return
        if event == "loaded":
            self.stream.write(f"loaded models: {', '.join(data['models']) or '-'}; "
                              f"datasets: {', '.join(data['datasets']) or '-'}\n")
        elif event == "check_end":
            r: CheckResult = data["result"]
            detail = _metric_line(r) if r.status is not Status.ERROR else (r.error.message if r.error else "")
            self.stream.write(f"  {_MARK[r.status]:<5} {r.id:<24} {r.uses:<28} {r.duration_s:7.2f}s  {detail}\n")
        self.stream.flush()


def summary(report: Report) -> str:
    d = report.decision
    counts: dict[str, int] = {}
    for c in report.checks:
        counts[c.status.value] = counts.get(c.status.value, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    lines = [f"decision: {d.decision.value}  ({tally}; {report.duration_s:.1f}s)"]
    lines += [f"  - {reason}" for reason in d.reasons]
    return "\n".join(lines) + "\n"
