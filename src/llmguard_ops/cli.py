"""The ``llmguard`` command line: a thin shell over the library.

Exit status (contract): 0 PROMOTE, 1 BLOCK, 3 REVIEW, 2 an error in the suite or its
inputs. Expected errors print as one line each, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import LlmguardError
from .options import OUT, PLUGIN, SET, add_cli_options

EXIT_OK = 0
EXIT_BLOCK = 1
EXIT_ERROR = 2
EXIT_REVIEW = 3


def _one_line_warnings() -> None:
    """Warnings a user should read (e.g. pickles run code) as one plain line each, once."""
    import warnings

    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"warning: {text}", file=sys.stderr)

    warnings.showwarning = show


def _quiet_third_parties() -> None:
    """Offline by default: no hub access, no telemetry from libraries a check imports."""
    for name, value in {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
        "DEEPEVAL_TELEMETRY_OPT_OUT": "YES", "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1", "ANONYMIZED_TELEMETRY": "False", "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(name, value)


def _host(args: argparse.Namespace) -> Any:
    from .plugins import get_plugin_manager, parse_plugin_options

    load, block = parse_plugin_options(args.plugin or [])
    return get_plugin_manager(plugins=load, blocked=block)


def _report_failures(host: Any) -> None:
    for failure in host.registry().failures:
        print(f"warning: {failure.line()}", file=sys.stderr)


def _live_display(quiet: bool, loaded: Any) -> Any:
    """rich progress on a terminal; None for plain lines (pipes, CI logs, --quiet, --json)."""
    from .terminal_live import LiveDisplay, wanted

    if not wanted(quiet):
        return None
    live = LiveDisplay(len(loaded.suite.checks))
    live.header(loaded.suite.name, loaded.path, loaded.sha256, len(loaded.suite.checks))
    return live


def cmd_run(args: argparse.Namespace) -> int:
    from .loading import load_suite
    from .runner import run_suite
    from .terminal import TerminalProgress, summary

    host = _host(args)
    _report_failures(host)
    loaded = load_suite(args.suite, host.registry(), overrides=args.set or [])
    out_dir = Path(args.out)
    quiet = args.quiet or args.json
    if args.history_dir:
        os.environ["LLMGUARD_HISTORY_DIR"] = args.history_dir
    live = _live_display(quiet, loaded)
    if not quiet and live is None:
        print(f"suite {loaded.suite.name} ({loaded.path.name}, sha256 {loaded.sha256[:12]}): "
              f"{len(loaded.suite.checks)} checks")
    if live is not None:
        with live:
            outcome = run_suite(loaded, host, out_dir, progress=live)
    else:
        outcome = run_suite(loaded, host, out_dir, progress=TerminalProgress(quiet=quiet))
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(outcome.report.to_json_dict(), indent=2, sort_keys=True))
    elif live is not None:
        live.summary(outcome.report, outcome.written)
    else:
        print(summary(outcome.report), end="")
        print(f"outputs: {', '.join(str(p) for p in outcome.written)}")
        if not outcome.report.signed:
            print("note: the report is unsigned")
    return outcome.report.decision.exit_code


def cmd_validate(args: argparse.Namespace) -> int:
    from .artifacts import check_model_paths, load_datasets
    from .loading import load_suite

    host = _host(args)
    _report_failures(host)
    registry = host.registry()
    loaded = load_suite(args.suite, registry, overrides=args.set or [])
    load_datasets(loaded, registry)
    check_model_paths(loaded, registry)
    print(f"{args.suite}: valid ({len(loaded.suite.checks)} checks, {len(loaded.suite.models)} models, "
          f"{len(loaded.suite.datasets)} datasets)")
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    host = _host(args)
    registry = host.registry()
    rows = [(name, d.plugin, d.plugin_version or "-", d.summary) for name, d in sorted(registry.checks.items())]
    if args.json:
        print(json.dumps([dict(zip(("name", "plugin", "version", "summary"), r, strict=True)) for r in rows], indent=2))
    else:
        widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("name", "plugin", "version"))]
        print(f"{'name':<{widths[0]}}  {'plugin':<{widths[1]}}  {'version':<{widths[2]}}  summary")
        for r in rows:
            print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    for failure in registry.failures:
        print(f"broken: {failure.line()}", file=sys.stderr)
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from .loading import suite_json_schema

    print(json.dumps(suite_json_schema(_host(args).registry()), indent=2))
    return EXIT_OK


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from .scaffold import new_plugin

    target = new_plugin(args.name, Path(args.out), args.folder)
    print(f"created {target}: cd {target} && pip install -e '.[test]' && pytest")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmguard",
        description="Gate model promotion with declarative suites and signed audit reports.",
        epilog="exit status: 0 PROMOTE, 1 BLOCK, 3 REVIEW, 2 error in the suite or its inputs",
    )
    add_cli_options(parser, [PLUGIN])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    run = sub.add_parser("run", help="run a suite and decide PROMOTE / REVIEW / BLOCK")
    run.add_argument("suite", help="suite file (YAML)")
    add_cli_options(run, [OUT, SET])  # shared with the pytest plugin (--llmguard-out, --llmguard-set)
    run.add_argument("--quiet", "-q", action="store_true", help="print only the decision")
    run.add_argument("--json", action="store_true", help="print report.json to stdout")
    run.add_argument("--history-dir", metavar="DIR",
                     help="run history folder (default: $LLMGUARD_HISTORY_DIR or ./.llmguard/runs; "
                     "'off' disables)")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a suite and its inputs without running models")
    validate.add_argument("suite")
    add_cli_options(validate, [SET])
    validate.set_defaults(func=cmd_validate)

    checks = sub.add_parser("checks", help="list installed checks")
    checks.add_argument("--json", action="store_true")
    checks.set_defaults(func=cmd_checks)

    schema = sub.add_parser("schema", help="print the JSON Schema of the suite format")
    schema.set_defaults(func=cmd_schema)

    scaffold = sub.add_parser("new-plugin", help="start a check plugin distribution from the template")
    scaffold.add_argument("name", help="plugin name, e.g. data_quality (check names become NAME.*)")
    scaffold.add_argument("--out", default=".", help="parent folder (default: .)")
    scaffold.add_argument("--folder", help="folder name (default: llmguard-NAME)")
    scaffold.set_defaults(func=cmd_new_plugin)

    from .report_commands import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_third_parties()
    _one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except LlmguardError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
