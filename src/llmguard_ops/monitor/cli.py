"""The ``monitor``, ``rules test`` and ``history migrate`` subcommands."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from ..errors import LlmguardError


def _dataset(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def cmd_monitor(args: argparse.Namespace) -> int:
    from ..cli import _host, _report_failures
    from .run import MonitorOptions, monitor

    host = _host(args)
    _report_failures(host)
    name, path = args.dataset
    now = None
    if args.now:
        try:
            now = dt.datetime.fromisoformat(args.now.replace("Z", "+00:00"))
        except ValueError:
            raise LlmguardError(f"--now: not an ISO timestamp: {args.now!r}") from None
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
    opts = MonitorOptions(
        suite=Path(args.suite),
        dataset=name,
        log=Path(path),
        time_column=args.time_column,
        every=args.every,
        out=Path(args.out),
        db=args.db,
        overrides=args.set or [],
        key=args.key,
        dev_key=args.dev_key,
        audit_log=None if args.no_audit_log else args.audit_log,
        prometheus=Path(args.prometheus) if args.prometheus else None,
        now=now,
        dry_run=args.dry_run,
        approve=args.approve or [],
        label_delay=args.label_delay,
        labelled=args.labelled,
        labels=Path(args.labels) if args.labels else None,
        label_id=args.label_id,
    )
    say = None if args.quiet else print
    result = monitor(opts, host, progress=say)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    latest = result.windows[-1]
    if not args.quiet:
        print(
            f"{len(result.ran)} new window(s) run, {len(result.windows)} recorded; "
            f"latest {latest['start']}: {latest['decision']}; {result.monitor_file}"
        )
    else:
        print(latest["decision"])
    return result.exit_code


def cmd_rules_test(args: argparse.Namespace) -> int:
    from .rules import run_tests

    ok = True
    for file in args.files:
        passed, lines = run_tests(Path(file))
        print(f"{file}:")
        for line in lines:
            print(f"  {line}")
        ok = ok and passed
    print("SUCCESS" if ok else "FAILED")
    return 0 if ok else 1


def cmd_history_migrate(args: argparse.Namespace) -> int:
    from ..history import history_dir, require_dir
    from .store import Store, migrate_json_runs

    directory = require_dir(history_dir(args.dir))
    if not directory.is_dir():
        raise LlmguardError(f"{directory}: no run history folder to migrate")
    store = Store(args.db)
    try:
        added, problems = migrate_json_runs(directory, store)
        counts = store.counts()
    finally:
        store.close()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(
        f"{directory} → {store.url}: {added} run(s) added; the database holds {counts['runs']} run(s), "
        f"{counts['metrics']} metric row(s)"
    )
    return 0


def add_commands(sub: Any) -> None:
    """Register ``monitor``, ``rules test`` and ``history-migrate``."""
    from ..options import SET, add_cli_options

    mon = sub.add_parser("monitor", help="run the suite once per time window of a production log")
    mon.add_argument("suite", help="suite file (YAML)")
    mon.add_argument(
        "--dataset",
        required=True,
        type=_dataset,
        metavar="NAME=PATH",
        help="the suite's dataset replaced by each window's rows: a CSV, Parquet or JSONL "
        "file, or a folder of partitions",
    )
    mon.add_argument("--time-column", required=True, metavar="COL", help="timestamp column of the log")
    mon.add_argument("--every", default="1d", metavar="LEN", help="window length: 1h, 1d, 7d, ... (default 1d)")
    mon.add_argument(
        "--out",
        default="llmguard-monitor",
        metavar="DIR",
        help="output folder: monitor.json and windows/<start>/ (default ./llmguard-monitor)",
    )
    mon.add_argument(
        "--db",
        metavar="URL",
        help="history database: a SQLAlchemy URL or a SQLite file "
        "(default $LLMGUARD_HISTORY_DB or .llmguard/history.db)",
    )
    mon.add_argument(
        "--prometheus",
        metavar="PATH",
        help="write the latest window's metrics and firing gates in Prometheus' text format",
    )
    mon.add_argument("--now", metavar="TIME", help="treat windows ending after TIME as still open (default: now)")
    mon.add_argument(
        "--label-delay",
        metavar="DURATION",
        help="windows younger than this (3d, 12h...) run label-free; once their labels arrived they run "
        "again as revision 1",
    )
    mon.add_argument(
        "--labelled",
        action="append",
        metavar="CHECK",
        help="a check left out of label-free windows (repeatable; default: the checks tagged "
        "needs-labels, e.g. performance and fairness checks, root-cause checks on realised accuracy)",
    )
    mon.add_argument("--labels", metavar="PATH", help="late labels (CSV/Parquet/JSONL) joined to the log on --label-id")
    mon.add_argument("--label-id", metavar="COLUMN", help="id column joining --labels to the log")
    add_cli_options(mon, [SET])
    mon.add_argument("--quiet", "-q", action="store_true", help="print only the latest decision")
    mon.add_argument("--key", metavar="PATH", help="ed25519 private key signing each window's attestation")
    mon.add_argument("--dev-key", action="store_true", help="sign with a throw-away development key")
    mon.add_argument(
        "--audit-log",
        default=".llmguard/audit.jsonl",
        metavar="PATH",
        help="audit log getting one entry per window (default .llmguard/audit.jsonl)",
    )
    mon.add_argument("--no-audit-log", action="store_true", help="append to no audit log")
    mon.add_argument("--dry-run", action="store_true", help="incident steps say what they would do and change nothing")
    mon.add_argument(
        "--approve",
        action="append",
        metavar="STEP_ID",
        help="approve a paused incident step of the latest window (repeatable)",
    )
    mon.set_defaults(func=cmd_monitor)

    rules = sub.add_parser("rules", help="learnt-gate rules: unit tests as promtool test rules")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="COMMAND")
    rules_sub.required = True
    test = rules_sub.add_parser(
        "test", help="check gates against metric series and expected firings (0 all pass, 1 a test failed, 2 error)"
    )
    test.add_argument("files", nargs="+", metavar="FILE")
    test.set_defaults(func=cmd_rules_test)

    migrate = sub.add_parser(
        "history-migrate", help="copy the JSON run history (.llmguard/runs) into the history database"
    )
    migrate.add_argument(
        "--dir", metavar="DIR", help="run history folder (default: $LLMGUARD_HISTORY_DIR or ./.llmguard/runs)"
    )
    migrate.add_argument("--db", metavar="URL", help="history database (default .llmguard/history.db)")
    migrate.set_defaults(func=cmd_history_migrate)
