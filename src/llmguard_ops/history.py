"""Run history: a copy of every run's report, and how each metric moved across runs.

Every run stores its report under a history folder (default ``.llmguard/runs`` relative
to the current directory; ``LLMGUARD_HISTORY_DIR`` or ``llmguard run --history-dir``
change it, ``off`` disables it) as ``<started_at>-<run_id>.json``, written atomically.
``llmguard history`` and the HTML report read that folder back. When the audit log
(``.llmguard/audit.jsonl``) is present its entries are joined on ``run_id``; it is never
required, and a run the log knows without a stored report still shows up, without
metrics.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LlmguardError
from .report import Report, atomic_write, dumps
from .results import Metric

HISTORY_ENV = "LLMGUARD_HISTORY_DIR"
DEFAULT_HISTORY_DIR = Path(".llmguard") / "runs"
AUDIT_LOG_NAME = "audit.jsonl"
_OFF = {"off", "none", "0", "false", "no"}


def history_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The history folder to use: ``explicit``, else the environment, else the default.

    Returns ``None`` when history is switched off (``off``).
    """
    value = os.fspath(explicit) if explicit is not None else os.environ.get(HISTORY_ENV)
    if value is None or value == "":
        return DEFAULT_HISTORY_DIR
    if value.strip().lower() in _OFF:
        return None
    return Path(value)


def run_file_name(report: Report) -> str:
    """``<started_at>-<run_id>.json`` with the colons taken out (portable file names)."""
    stamp = report.started_at.replace(":", "").replace("-", "")
    return f"{stamp}-{report.run_id}.json"


def save_run(report: Report, directory: Path) -> Path:
    """Store ``report`` in the history folder (atomically) and return the file."""
    return atomic_write(Path(directory) / run_file_name(report), dumps(report.to_json_dict()))


@dataclass
class RunRecord:
    """One run as history knows it: its stored report and/or its audit-log entry."""

    run_id: str
    started_at: str
    suite: str | None
    decision: str | None
    report: Report | None = None
    path: Path | None = None
    audit: dict[str, Any] | None = None

    def metric(self, key: str) -> Metric | None:
        """The metric ``<check id>.<metric name>`` of this run, if it has it."""
        if self.report is None:
            return None
        check_id, _, name = key.partition(".")
        for check in self.report.checks:
            if check.id == check_id:
                return check.metrics.get(name)
        return None

    def gate_failed(self, key: str) -> bool | None:
        """Whether the gate on ``key`` failed in this run (``None``: not gated)."""
        if self.report is None:
            return None
        check_id, _, name = key.partition(".")
        for check in self.report.checks:
            if check.id == check_id:
                for gate in check.gates:
                    if gate.metric == name:
                        return not gate.passed
        return None


@dataclass
class History:
    """The runs found, oldest first, and the files that could not be read."""

    runs: list[RunRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def suites(self) -> list[str]:
        return sorted({r.suite for r in self.runs if r.suite})

    def of_suite(self, name: str) -> list[RunRecord]:
        return [r for r in self.runs if r.suite == name]


def read_audit_log(path: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Audit-log entries by ``run_id`` (tolerant: the log is optional and owned elsewhere)."""
    entries: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    if not path.is_file():
        return entries, problems
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}:{number}: not JSON ({exc.msg}); entry ignored")
            continue
        if isinstance(entry, dict) and isinstance(entry.get("run_id"), str):
            entries[entry["run_id"]] = entry
    return entries, problems


def _audit_suite(entry: dict[str, Any], names_by_sha: dict[str, str]) -> str | None:
    for key in ("suite", "suite_name"):
        value = entry.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return str(value["name"])
    sha = entry.get("suite_sha256")
    return names_by_sha.get(sha) if isinstance(sha, str) else None


def load_history(
    directory: Path | None,
    *,
    suite: str | None = None,
    audit_log: Path | None = None,
    exclude_run: str | None = None,
    db: str | None = None,
) -> History:
    """Read every stored run (and the audit log, when present), oldest first.

    ``db``: also read the runs of a history database (a SQLAlchemy URL or SQLite file,
    see :mod:`llmguard_ops.monitor.store`); a run in both appears once.
    """
    history = History()
    by_id: dict[str, RunRecord] = {}
    if db is not None:
        from .monitor.store import Store

        store = Store(db)
        try:
            for report in store.reports(suite):
                if report.run_id != exclude_run:
                    by_id[report.run_id] = RunRecord(
                        run_id=report.run_id,
                        started_at=report.started_at,
                        suite=report.suite.name,
                        decision=report.decision.decision.value,
                        report=report,
                    )
        finally:
            store.close()
    if directory is not None and directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            try:
                report = Report.model_validate(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                history.problems.append(f"{path}: not a readable report ({first}); skipped")
                continue
            if report.run_id == exclude_run:
                continue
            by_id[report.run_id] = RunRecord(
                run_id=report.run_id,
                started_at=report.started_at,
                suite=report.suite.name,
                decision=report.decision.decision.value,
                report=report,
                path=path,
            )
    if audit_log is None and directory is not None:
        audit_log = directory.parent / AUDIT_LOG_NAME
    if audit_log is not None:
        entries, problems = read_audit_log(audit_log)
        history.problems += problems
        names_by_sha = {r.report.suite.sha256: r.report.suite.name for r in by_id.values() if r.report}
        for run_id, entry in entries.items():
            if run_id == exclude_run:
                continue
            record = by_id.get(run_id)
            if record is None:
                when = entry.get("time") or entry.get("timestamp") or entry.get("started_at") or ""
                decision = entry.get("decision")
                record = by_id[run_id] = RunRecord(
                    run_id=run_id,
                    started_at=str(when),
                    suite=_audit_suite(entry, names_by_sha),
                    decision=str(decision) if decision is not None else None,
                )
            record.audit = entry
    runs = sorted(by_id.values(), key=lambda r: (r.started_at, r.run_id))
    history.runs = [r for r in runs if suite is None or r.suite == suite]
    return history


def metric_keys(runs: Sequence[RunRecord], patterns: Iterable[str] = ()) -> list[str]:
    """``<check id>.<metric>`` keys present in any run, in first-seen order, filtered.

    A pattern (fnmatch) matches the full key or the metric name alone, so ``accuracy``
    and ``quality.*`` both work.
    """
    pats = list(patterns)
    keys: dict[str, None] = {}
    for run in runs:
        if run.report is None:
            continue
        for check in run.report.checks:
            for name in check.metrics:
                key = f"{check.id}.{name}"
                if not pats or any(fnmatch.fnmatchcase(key, p) or fnmatch.fnmatchcase(name, p) for p in pats):
                    keys.setdefault(key)
    return list(keys)


def gated_keys(report: Report) -> list[str]:
    """The gated metrics of a report as ``<check id>.<metric>`` keys."""
    return [f"{c.id}.{g.metric}" for c in report.checks for g in c.gates]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def series_records(runs: Sequence[RunRecord], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Long-format rows (one per run and metric): the input to learning thresholds."""
    rows = []
    for run in runs:
        for key in keys:
            m = run.metric(key)
            if m is None:
                continue
            rows.append(
                {
                    "suite": run.suite,
                    "run_id": run.run_id,
                    "started_at": run.started_at,
                    "decision": run.decision,
                    "metric": key,
                    "value": m.value,
                    "lower": m.lower,
                    "upper": m.upper,
                    "confidence": m.confidence,
                    "gate_failed": run.gate_failed(key),
                    "audited": run.audit is not None,
                }
            )
    return rows


def format_table(suite: str, runs: Sequence[RunRecord], keys: Sequence[str]) -> str:
    """A plain-text table: one row per metric, one column per run, then the last change.

    A value followed by ``!`` failed its gate in that run.
    """
    head = [
        ("run", [f"#{i}" for i in range(1, len(runs) + 1)]),
        ("started", [r.started_at[:19].replace("T", " ") or "?" for r in runs]),
        ("run id", [r.run_id[:8] for r in runs]),
        ("decision", [r.decision or "?" for r in runs]),
        ("audit log", ["yes" if r.audit is not None else "-" for r in runs]),
    ]
    body = []
    for key in keys:
        cells = []
        values = []
        for run in runs:
            m = run.metric(key)
            failed = run.gate_failed(key)
            cells.append("-" if m is None else _fmt(m.value) + ("!" if failed else ""))
            if m is not None:
                values.append(m.value)
        change = _fmt(values[-1] - values[-2]) if len(values) >= 2 else "-"
        if len(values) >= 2 and values[-1] - values[-2] > 0:
            change = "+" + change
        body.append((key, cells, change))
    label_w = max([len(h) for h, _ in head] + [len(k) for k, _, _ in body] + [6])
    col_w = [max([len(c[i]) for _, c in head] + [len(c[i]) for _, c, _ in body]) for i in range(len(runs))]
    lines = [f"suite {suite}: {len(runs)} run{'s' if len(runs) != 1 else ''}"]
    for label, cells in head:
        lines.append(f"{label:<{label_w}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, col_w, strict=True)))
    lines.append(f"{'metric':<{label_w}}  " + "  ".join(" " * w for w in col_w) + "  last change")
    for key, cells, change in body:
        lines.append(
            f"{key:<{label_w}}  "
            + "  ".join(f"{c:>{w}}" for c, w in zip(cells, col_w, strict=True))
            + f"  {change:>11}"
        )
    if not body:
        lines.append("(no metrics match)")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def require_dir(directory: Path | None) -> Path:
    """The history folder, or a one-line error saying why there is none."""
    if directory is None:
        raise LlmguardError(f"run history is switched off ({HISTORY_ENV}=off); pass --dir to read a folder")
    return directory
