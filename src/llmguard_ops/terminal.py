"""Plain-text terminal output: progress lines and the end-of-run summary."""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

from .report import Report
from .results import CheckResult, Status

# ESC-introduced sequences (CSI ``ESC [ … final``, OSC ``ESC ] … BEL/ST``, two-byte escapes)
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_]|$)")
# every other C0/C1 control but newline and tab (carriage returns and backspaces rewrite lines)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without terminal control sequences, safe to print.

    Error messages and metric names come from models, plugins and suites; raw ANSI escapes
    in them could recolour, hide or rewrite what a reviewer reads (or set the window
    title, or plant a hyperlink). Newlines and tabs are kept.
    """
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


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
            self.stream.write(
                clean(
                    f"loaded models: {', '.join(data['models']) or '-'}; datasets: {', '.join(data['datasets']) or '-'}"
                )
                + "\n"
            )
        elif event == "check_end":
            r: CheckResult = data["result"]
            detail = _metric_line(r) if r.status is not Status.ERROR else (r.error.message if r.error else "")
            line = f"  {_MARK[r.status]:<5} {r.id:<24} {r.uses:<28} {r.duration_s:7.2f}s  {detail}"
            self.stream.write(clean(line) + "\n")
        self.stream.flush()


def summary(report: Report) -> str:
    d = report.decision
    counts: dict[str, int] = {}
    for c in report.checks:
        counts[c.status.value] = counts.get(c.status.value, 0) + 1
    tally = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    lines = [f"decision: {d.decision.value}  ({tally}; {report.duration_s:.1f}s)"]
    lines += [f"  - {reason}" for reason in d.reasons]
    return clean("\n".join(lines)) + "\n"
