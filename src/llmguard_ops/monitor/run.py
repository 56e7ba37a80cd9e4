"""``llmguard monitor``: the suite once per time window of a production log."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LlmguardError
from ..report import atomic_write
from ..results import Decision
from .store import Store
from .windows import Window, iso, parse_every, read_log, split

MONITOR_FILE = "monitor.json"


@dataclass
class MonitorOptions:
    """What ``llmguard monitor`` was asked to do (see the CLI for each option)."""

    suite: Path
    dataset: str
    log: Path
    time_column: str
    every: str = "1d"
    out: Path = Path("llmguard-monitor")
    db: str | None = None
    overrides: list[str] = field(default_factory=list)
    key: str | None = None
    dev_key: bool = False
    audit_log: str | None = None
    prometheus: Path | None = None
    now: dt.datetime | None = None
    anomalies: bool = True
    dry_run: bool = False
    page: bool = True
    approve: list[str] = field(default_factory=list)
    #: windows younger than this run label-free, and run again once their labels arrived
    label_delay: str | None = None
    #: checks left out of a label-free window (default: see :func:`labelled_checks`)
    labelled: list[str] | None = None
    #: a file of late labels joined to the log on ``label_id``
    labels: Path | None = None
    label_id: str | None = None


@dataclass
class MonitorResult:
    ran: list[dict[str, Any]]
    windows: list[dict[str, Any]]
    monitor_file: Path
    warnings: list[str]
    exit_code: int


def _window_overrides(opts: MonitorOptions, data_path: Path) -> list[str]:
    return [*opts.overrides, f"datasets.{opts.dataset}.path={data_path.resolve()}"]


def _write_window_data(window: Window, folder: Path, time_column: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "window.parquet"
    frame = window.frame.copy()
    frame[time_column] = frame[time_column].astype(str)  # keep the log's own spelling
    frame.to_parquet(path, index=False)
    return path


def labelled_checks(checks: Iterable[Any], dataset: str, explicit: list[str] | None, registry: Any) -> list[str]:
    """Ids of the checks that need the window's labels.

    ``explicit`` when given; else the checks reading ``dataset`` whose definition is
    tagged ``needs-labels`` (``CheckDefinition.tags``), except a ``root-cause`` check
    ranking an estimated, label-free metric (``cbpe_accuracy``).
    """
    if explicit is not None:
        return list(explicit)
    found = []
    for c in checks:
        reads = dataset in {str(v) for v in c.with_.values() if isinstance(v, str)} or "dataset" not in c.with_
        estimated = registry.tagged(c.uses, "root-cause") and c.with_.get("metric") == "cbpe_accuracy"
        if reads and registry.tagged(c.uses, "needs-labels") and not estimated:
            found.append(c.id)
    return found


def run_window(
    opts: MonitorOptions,
    host: Any,
    store: Store,
    window: Window,
    *,
    revision: int | None = None,
    label_free: bool = False,
) -> dict[str, Any]:
    """Run the suite on one window, record it and return its ``monitor.json`` entry."""
    from ..evidence.options import prepare
    from ..loading import load_suite
    from ..runner import run_suite
    from .resolve import resolve_gates

    folder = opts.out / "windows" / window.folder_name
    if revision:
        folder = folder / f"r{revision}"
    data = _write_window_data(window, folder / "data", opts.time_column)
    overrides = _window_overrides(opts, data)
    if label_free:
        overrides.append(f"datasets.{opts.dataset}.target=null")
    loaded = load_suite(opts.suite, host.registry(), overrides=overrides)
    if opts.dataset not in loaded.suite.datasets:
        raise LlmguardError(
            f"--dataset {opts.dataset}: the suite has no dataset of that name "
            f"(it defines: {', '.join(loaded.suite.datasets) or 'none'})"
        )
    left_out: list[str] = []
    if label_free:
        left_out = labelled_checks(loaded.suite.checks, opts.dataset, opts.labelled, host.registry())
        loaded.suite.checks = [c for c in loaded.suite.checks if c.id not in left_out]
    applied = resolve_gates(loaded, store, window.key)
    record: dict[str, Any] = {
        "window": {
            "start": window.key,
            "end": iso(window.end),
            "rows": len(window.frame),
            "dataset": opts.dataset,
            "every": opts.every,
        },
        "gates": applied,
    }
    if revision is not None:
        record["revision"] = {"revision": revision, "label_free": label_free, "left_out": left_out}
    loaded.suite.metadata = {**loaded.suite.metadata, "llmguard.monitor": record}
    if isinstance(loaded.raw.get("metadata"), dict):
        loaded.raw["metadata"] = {**loaded.raw["metadata"], "llmguard.monitor": record}
    evidence = prepare(loaded, key=opts.key, dev_key=opts.dev_key, audit_log=opts.audit_log)
    outcome = run_suite(loaded, host, folder, evidence=evidence)
    report = outcome.report
    fired = [f"{c.id}.{g.metric}" for c in report.checks for g in c.gates if not g.passed]
    store.record_window(
        report,
        start=window.key,
        end=iso(window.end),
        rows=len(window.frame),
        fired=fired,
        folder=str(folder),
        revision=revision,
        label_free=label_free,
    )
    from . import rootcause

    hints = rootcause.root_causes(report, host.registry())
    if hints is not None:
        rootcause.save(folder, hints)
    steps: list[dict[str, Any]] = []
    if loaded.suite.incidents:
        from .incidents import run_playbook, save

        audit = Path(opts.audit_log) if opts.audit_log else None
        steps = run_playbook(
            loaded.suite.incidents,
            host,
            report,
            folder,
            window.key,
            fired,
            dry_run=opts.dry_run,
            approved=opts.approve,
            audit_log=audit,
        )
        if steps:
            save(folder, window.key, fired, steps)
    return {
        "revision": revision,
        "label_free": label_free,
        "root_causes": hints,
        "incidents": steps,
        "start": window.key,
        "end": iso(window.end),
        "rows": len(window.frame),
        "decision": report.decision.decision.value,
        "fired": fired,
        "run_id": report.run_id,
        "folder": str(folder),
        "warnings": outcome.warnings,
    }


def monitor(opts: MonitorOptions, host: Any = None, progress: Callable[[str], None] | None = None) -> MonitorResult:
    """Run every window of the log not yet recorded, oldest first, then write ``monitor.json``."""
    from ..loading import load_suite
    from ..plugins import get_plugin_manager

    host = host or get_plugin_manager()
    every = parse_every(opts.every)
    base = load_suite(opts.suite, host.registry(), overrides=opts.overrides)
    if opts.dataset not in base.suite.datasets:
        raise LlmguardError(
            f"--dataset {opts.dataset}: the suite has no dataset of that name "
            f"(it defines: {', '.join(base.suite.datasets) or 'none'})"
        )
    name = base.suite.name
    frame = read_log(opts.log)
    delay = None
    if opts.label_delay:
        try:
            delay = parse_every(opts.label_delay)
        except LlmguardError:
            raise LlmguardError(
                f"--label-delay: expected a length such as 12h or 3d, got {opts.label_delay!r}"
            ) from None
    target = base.suite.datasets[opts.dataset].target
    if delay is not None:
        if target is None:
            raise LlmguardError(f"--label-delay: dataset '{opts.dataset}' declares no target column")
        frame = _join_labels(frame, opts, target)
    now = opts.now or dt.datetime.now(dt.UTC)
    now = now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    store = Store(opts.db)
    warnings: list[str] = []
    try:
        recorded = store.windows(name)
        done = {w["start"] for w in recorded}
        awaiting = {w["start"] for w in recorded if w.get("label_free")}
        ran = []
        for window in split(frame, opts.time_column, every, now=opts.now):
            old_enough = delay is not None and now - window.end >= delay
            if window.key in done:
                if window.key in awaiting and old_enough and _labelled(window, target):
                    entry = run_window(opts, host, store, window, revision=1)
                    warnings += [f"{entry['start']}: {w}" for w in entry.pop("warnings")]
                    ran.append(entry)
                    if progress:
                        fired = ", ".join(entry["fired"]) or "-"
                        progress(
                            f"{entry['start']}  labels arrived: revision 1  {entry['decision']:<7}  fired: {fired}"
                        )
                continue
            if delay is None:
                entry = run_window(opts, host, store, window)
            else:
                entry = run_window(opts, host, store, window, revision=0, label_free=not old_enough)
            warnings += [f"{entry['start']}: {w}" for w in entry.pop("warnings")]
            ran.append(entry)
            if progress:
                fired = ", ".join(entry["fired"]) or "-"
                free = "  (label-free)" if entry["label_free"] else ""
                progress(f"{entry['start']}  {entry['rows']:>7} rows  {entry['decision']:<7}  fired: {fired}{free}")
                for seg in (entry["root_causes"] or {}).get("segments", [])[:3]:
                    progress(
                        f"  root cause #{seg['rank']}: {seg['column']}={seg['segment']} "
                        f"({seg['share']:.0%} of rows): {seg['reference']:.3f} -> {seg['window']:.3f}"
                        + (" [drifted]" if seg["drifted"] else "")
                    )
                for step in entry["incidents"]:
                    progress(f"  incident step {step['step']} ({step['uses']}): {step['status']}: {step['outcome']}")
        windows = store.windows(name)
        if opts.approve and not ran and windows:
            resumed = resume_approved(opts, host, base.suite.incidents, Path(windows[-1]["folder"]))
            for step in resumed:
                if progress:
                    progress(f"  incident step {step['step']} ({step['uses']}): {step['status']}: {step['outcome']}")
        series = store.all_series(name) if windows else {}
    finally:
        store.close()
    if not windows:
        raise LlmguardError(f"{opts.log}: no complete window of {opts.every} in the log")
    summary: dict[str, Any] = {
        "suite": name,
        "dataset": opts.dataset,
        "log": str(opts.log),
        "time_column": opts.time_column,
        "every": opts.every,
        "windows": [
            {k: w[k] for k in ("start", "end", "rows", "decision", "fired", "run_id")}
            | {"folder": _rel(w["folder"], opts.out), "incidents": _incident_steps(Path(w["folder"]))}
            | _root_cause_entry(Path(w["folder"]), w["fired"])
            | _revision_entry(w, opts.out)
            for w in windows
        ],
    }
    if opts.anomalies and len(windows) >= 8:
        from .anomalies import detect

        summary["anomalies"] = detect(series, [w["start"] for w in windows])
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.page:
        from .page import write_page

        write_page(opts.out, summary, series)
    path = atomic_write(opts.out / MONITOR_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if opts.prometheus is not None:
        from .prometheus import write_textfile

        write_textfile(opts.prometheus, name, windows[-1], series)
    latest = Decision(windows[-1]["decision"])
    return MonitorResult(ran=ran, windows=windows, monitor_file=path, warnings=warnings, exit_code=latest.exit_code)


def _join_labels(frame: Any, opts: MonitorOptions, target: str) -> Any:
    """The log with the late labels of ``opts.labels`` joined on ``opts.label_id``."""
    if opts.labels is None:
        return frame
    if not opts.label_id:
        raise LlmguardError("--labels needs --label-id COLUMN (the id joining labels to the log)")
    labels = read_log(opts.labels)
    for col, where, data in ((opts.label_id, str(opts.log), frame), (opts.label_id, str(opts.labels), labels)):
        if col not in data.columns:
            raise LlmguardError(f"{where}: no column '{col}' (--label-id)")
    if target not in labels.columns:
        raise LlmguardError(f"{opts.labels}: no column '{target}' (the target of dataset '{opts.dataset}')")
    late = labels[[opts.label_id, target]].drop_duplicates(opts.label_id, keep="last")
    late = late.rename(columns={target: "__late_label"})
    merged = frame.merge(late, on=opts.label_id, how="left")
    if target in merged.columns:
        merged[target] = merged[target].where(merged[target].notna(), merged["__late_label"])
    else:
        merged[target] = merged["__late_label"]
    return merged.drop(columns="__late_label")


def _labelled(window: Window, target: str | None) -> bool:
    """Every row of the window has its label."""
    return target is not None and target in window.frame.columns and bool(window.frame[target].notna().all())


def _revision_entry(w: dict[str, Any], out: Path) -> dict[str, Any]:
    if "revisions" not in w:
        return {}
    return {
        "revision": w["revision"],
        "label_free": w["label_free"],
        "revisions": [r | {"folder": _rel(r["folder"], out)} for r in w["revisions"]],
    }


def _root_cause_entry(folder: Path, fired: list[str]) -> dict[str, Any]:
    if not fired:
        return {}
    from .rootcause import load

    hints = load(folder)
    return {"root_causes": hints} if hints is not None else {}


def _incident_steps(folder: Path) -> list[dict[str, Any]]:
    from .incidents import INCIDENT_FILE

    path = folder / INCIDENT_FILE
    if not path.is_file():
        return []
    steps: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8")).get("steps", [])
    return steps


def resume_approved(opts: MonitorOptions, host: Any, steps: list[Any], folder: Path) -> list[dict[str, Any]]:
    """Run the paused steps of the window in ``folder`` from the first approved one."""
    from ..report import Report
    from .incidents import INCIDENT_FILE, run_playbook, save

    path = folder / INCIDENT_FILE
    if not path.is_file():
        return []
    state = json.loads(path.read_text(encoding="utf-8"))
    paused = [r for r in state["steps"] if r["status"] == "awaiting-approval"]
    if not paused or paused[0]["step"] not in opts.approve:
        return []
    report = Report.model_validate(json.loads((folder / "report.json").read_text(encoding="utf-8")))
    audit = Path(opts.audit_log) if opts.audit_log else None
    records = run_playbook(
        steps,
        host,
        report,
        folder,
        state["window"],
        state["fired"],
        dry_run=opts.dry_run,
        approved=opts.approve,
        audit_log=audit,
        start_at=paused[0]["step"],
    )
    done = [r for r in state["steps"] if r["status"] != "awaiting-approval"]
    save(folder, state["window"], state["fired"], done + records)
    return records


def _rel(folder: str, out: Path) -> str:
    try:
        return Path(folder).resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        return folder


def fired_windows(windows: Iterable[dict[str, Any]], key: str) -> list[str]:
    """Starts of the windows where ``check.metric`` fired."""
    return [w["start"] for w in windows if key in w["fired"]]
