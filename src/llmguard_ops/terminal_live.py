"""Live terminal display of a run (rich): progress while it runs, a summary table after.

Used by ``llmguard run`` only when stdout is a terminal and neither ``--quiet`` nor
``--json`` is given; CI logs and pipes get the plain lines of
:mod:`llmguard_ops.terminal`. rich is imported when a display is built, never when the
CLI module is imported.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from .report import Report
from .results import CheckResult, GateOutcome, Status
from .terminal import _metric_line

_STYLE = {
    Status.PASS: "green",
    Status.FAIL: "bold red",
    Status.WARN: "yellow",
    Status.ERROR: "bold red",
    Status.SKIP: "dim",
}
_DECISION_STYLE = {
    "PROMOTE": "bold white on green",
    "REVIEW": "bold black on yellow",
    "BLOCK": "bold white on red",
}


def _safe(text: str) -> str:
    """Rich markup escaped and terminal control sequences removed (see :func:`clean`)."""
    from rich.markup import escape

    from .terminal import clean

    return str(escape(clean(text)))


def wanted(quiet: bool, stream: Any = None) -> bool:
    """Whether to show the live display: a real terminal, and output not silenced."""
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return not quiet and callable(isatty) and bool(isatty())


def _gate_cell(check: CheckResult, gate: GateOutcome) -> str:
    """``accuracy 0.741 [0.722, 0.759] ≥ 0.7 ✓`` (red with ✗ when the gate fails)."""

    m = check.metrics.get(gate.metric)
    interval = f" [{m.lower:.4g}, {m.upper:.4g}]" if m is not None and m.has_interval else ""
    value = f"{gate.value:.4g}" if gate.value is not None else "?"
    bounds = " ".join(
        b
        for b in (
            f"≥ {gate.min:g}" if gate.min is not None else "",
            f"≤ {gate.max:g}" if gate.max is not None else "",
        )
        if b
    )
    if gate.confidence is not None:
        bounds += f" @{gate.confidence:.0%}"
    text = _safe(f"{gate.metric} {value}{interval} {bounds}")
    return f"{text} [green]✓[/]" if gate.passed else f"[red]{text} ✗[/]"


class LiveDisplay:
    """A progress callback for :func:`llmguard_ops.runner.run_suite` drawn with rich.

    Use as a context manager around the run: a spinner while models and datasets load,
    one line per check with its elapsed time while it runs (kept, with its status and
    headline metrics, once it ends), then :meth:`summary`.
    """

    def __init__(self, total_checks: int, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = console or Console(highlight=False)
        self.total = total_checks
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("[dim]{task.fields[count]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._overall: Any = None
        self._loading: Any = None
        self._done = 0
        self._t0 = time.perf_counter()

    def __enter__(self) -> LiveDisplay:
        self.progress.start()
        self._loading = self.progress.add_task("loading models and datasets", total=None, count="")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def header(self, name: str, path: Path, sha256: str, checks: int) -> None:
        self.console.print(f"[bold]suite {name}[/] ({path.name}, sha256 {sha256[:12]}): {checks} checks")

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if event == "loaded":
            if self._loading is not None:
                self.progress.remove_task(self._loading)
                self._loading = None
            elapsed = time.perf_counter() - self._t0
            self.console.print(
                f"[green]✓[/] loaded models: {_safe(', '.join(data['models']) or '-')}; "
                f"datasets: {_safe(', '.join(data['datasets']) or '-')} [dim]({elapsed:.1f}s)[/]"
            )
            self._overall = self.progress.add_task("checks", total=self.total, count=f"0/{self.total}")
        elif event == "check_start":
            self._tasks[data["id"]] = self.progress.add_task(
                f"  [bold]{_safe(data['id'])}[/] [dim]{_safe(data['uses'])}[/]",
                total=None,
                count="",
            )
        elif event == "check_end":
            r: CheckResult = data["result"]
            task = self._tasks.pop(r.id, None)
            if task is not None:
                self.progress.remove_task(task)
            detail = _metric_line(r, limit=3) if r.status is not Status.ERROR else (r.error.message if r.error else "")
            self.console.print(
                f"  [{_STYLE[r.status]}]{r.status.value.upper():<5}[/] {_safe(r.id):<22} "
                f"[dim]{r.duration_s:6.2f}s[/]  {_safe(detail)}",
                overflow="ellipsis",
                no_wrap=True,
            )
            self._done += 1
            if self._overall is not None:
                self.progress.update(self._overall, completed=self._done, count=f"{self._done}/{self.total}")
                if self._done >= self.total:
                    self.progress.remove_task(self._overall)
                    self._overall = None
                    self.progress.add_task("deciding and writing the outputs", total=None, count="")

    def summary(self, report: Report, written: list[Path]) -> None:
        """The end-of-run table, the decision with its reasons, and the outputs."""
        from rich.table import Table

        table = Table(
            title=f"{report.suite.name} · run {report.run_id[:8]}",
            title_justify="left",
            show_lines=False,
            header_style="bold",
        )
        for column, kwargs in (
            ("status", {}),
            ("check", {}),
            ("uses", {"style": "dim", "no_wrap": True, "overflow": "ellipsis"}),
            ("severity", {}),
            ("gated metrics", {"overflow": "fold"}),
            ("time", {"justify": "right"}),
        ):
            table.add_column(column, **kwargs)
        for c in report.checks:
            gates = "\n".join(_gate_cell(c, g) for g in c.gates) or (_safe(c.error.message) if c.error else "—")
            table.add_row(
                f"[{_STYLE[c.status]}]{c.status.value.upper()}[/]",
                _safe(c.id),
                _safe(c.uses),
                c.severity.value,
                gates,
                f"{c.duration_s:.1f}s",
            )
        self.console.print(table)
        d = report.decision.decision.value
        self.console.print(
            f"[{_DECISION_STYLE[d]}] {d} [/] in {report.duration_s:.1f}s"
            f"{'' if report.signed else ' [dim](unsigned)[/]'}"
        )
        for reason in report.decision.reasons:
            self.console.print(f"  • {_safe(reason)}")
        if written:
            self.console.print(f"[dim]outputs: {_safe(', '.join(str(p) for p in written))}[/]")
