"""``llmguard report`` and ``llmguard history``: reports for people, from stored runs.

Kept apart from :mod:`llmguard_ops.cli` so that the CLI module stays small; everything
heavy (jinja2, matplotlib) is imported inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import LlmguardError


def load_stored_report(path: Path) -> Any:
    """Read ``report.json``; a missing or malformed file is a one-line error."""
    from pydantic import ValidationError

    from .report import Report

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LlmguardError(f"{path}: cannot read the report ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LlmguardError(f"{path}:{exc.lineno}:{exc.colno}: not JSON ({exc.msg})") from None
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LlmguardError(f"{path}: not an llmguard report: {where}: {first['msg']}") from None


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render ``report.html`` and ``model_card.md`` from a stored ``report.json``.

    The pages say whether the attestation beside the report verifies over it (with
    ``--key``: its signature too). Exit 1 when an attestation is there and does not:
    the report was edited, or the attestation is another run's.
    """
    from .evidence.verify import report_status
    from .publish import stored_outputs
    from .reporters.html import write_html
    from .reporters.model_card import write_card
    from .terminal import clean

    if args.history_dir:
        os.environ["LLMGUARD_HISTORY_DIR"] = args.history_dir
    path = Path(args.report)
    report = load_stored_report(path)
    report.outputs = {**stored_outputs(path), **report.outputs}
    status = report_status(path, Path(args.key) if getattr(args, "key", None) else None)
    source = path.parent
    out = Path(args.out) if args.out else source
    written = write_card(report, out, source_dir=source, verification=status) + write_html(
        report, out, source_dir=source, verification=status
    )
    if getattr(args, "approvals", None):
        from .errors import LlmguardError
        from .reporters.compliance import check_signoff, write_compliance

        if not (args.key and args.trust):
            raise LlmguardError("report --approvals needs --key (the run's public key) and --trust FILE")
        signoff = check_signoff(source / "attestation.dsse.json", Path(args.key), Path(args.approvals),
                                Path(args.trust))  # fmt: skip
        written += write_compliance(report, out, signoff)
    for p in written:
        print(p)
    line = clean(f"{status.title}: {status.line}")
    print(line if status.ok else f"warning: {line}", file=sys.stdout if status.ok else sys.stderr)
    return 0 if status.ok else 1


def cmd_history(args: argparse.Namespace) -> int:
    """Show how each metric moved across the stored runs of each suite."""
    from .history import (
        format_table,
        history_dir,
        load_history,
        metric_keys,
        require_dir,
        series_records,
    )

    directory = require_dir(history_dir(args.dir))
    log = Path(args.log) if args.log else None
    db = getattr(args, "db", None)
    if not directory.is_dir() and not (log and log.is_file()) and db is None:
        raise LlmguardError(
            f"{directory}: no run history here (each 'llmguard run' stores its report there; see --history-dir)"
        )
    history = load_history(directory, suite=args.suite, audit_log=log, db=db)
    for problem in history.problems:
        print(f"warning: {problem}", file=sys.stderr)
    suites = history.suites()
    if not suites:
        what = f" of suite '{args.suite}'" if args.suite else ""
        print(f"no runs{what} in {directory}")
        return 0
    records: list[dict[str, Any]] = []
    for i, suite in enumerate(suites):
        runs = history.of_suite(suite)[-args.last :]
        patterns = args.metric or []
        keys = metric_keys(runs, patterns)
        if not patterns:
            # headline view: gated and top-level metrics (per-column/per-group ones on request)
            latest = next((r.report for r in reversed(runs) if r.report is not None), None)
            gated = {f"{c.id}.{g.metric}" for c in latest.checks for g in c.gates} if latest else set()
            keys = [k for k in keys if k in gated or "." not in k.partition(".")[2]]
        if args.json:
            records += series_records(runs, keys)
            continue
        if i:
            print()
        print(format_table(suite, runs, keys), end="")
    if args.json:
        print(json.dumps(records, indent=2))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_commands(sub: Any) -> None:
    """Add ``report`` and ``history`` to the CLI's subcommands."""
    report = sub.add_parser("report", help="re-render report.html and model_card.md from a stored report.json")
    report.add_argument("report", metavar="REPORT_JSON", help="a report.json written by 'llmguard run'")
    report.add_argument("--out", metavar="DIR", help="folder to write into (default: the report's folder)")
    report.add_argument(
        "--key",
        metavar="PUB",
        help="public key: also verify the signature of the attestation beside the report",
    )
    report.add_argument(
        "--approvals",
        metavar="DIR",
        help="also re-render compliance.md with these approvals checked (needs --key and --trust)",
    )
    report.add_argument("--trust", metavar="FILE", help="trust file for --approvals")
    report.add_argument(
        "--history-dir",
        metavar="DIR",
        help="run history to plot earlier runs from (default: $LLMGUARD_HISTORY_DIR or ./.llmguard/runs)",
    )
    report.set_defaults(func=cmd_report)

    history = sub.add_parser("history", help="show how each metric moved across stored runs")
    history.add_argument(
        "--dir",
        metavar="DIR",
        help="run history folder (default: $LLMGUARD_HISTORY_DIR or ./.llmguard/runs)",
    )
    history.add_argument("--suite", metavar="NAME", help="only this suite")
    history.add_argument(
        "--metric",
        action="append",
        metavar="PATTERN",
        help="metrics to show, as CHECK.METRIC or METRIC, fnmatch patterns (repeatable; "
        "default: gated and top-level metrics; '*' shows every metric)",
    )
    history.add_argument(
        "--log",
        metavar="PATH",
        help="audit log to join on run id (default: audit.jsonl next to the history folder, when present)",
    )
    history.add_argument("--last", type=_positive, default=10, metavar="N", help="show the last N runs (default 10)")
    history.add_argument("--json", action="store_true", help="one JSON record per run and metric")
    history.add_argument(
        "--db",
        metavar="URL",
        help="also read the history database (SQLAlchemy URL or SQLite file), "
        "e.g. .llmguard/history.db as written by 'llmguard monitor'",
    )
    history.set_defaults(func=cmd_history)
