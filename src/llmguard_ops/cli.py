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
    from .evidence.options import evidence_lines, evidence_options
    from .loading import load_suite
    from .runner import run_suite
    from .terminal import TerminalProgress, summary

    host = _host(args)
    _report_failures(host)
    loaded = load_suite(args.suite, host.registry(), overrides=args.set or [])
    evidence = evidence_options(args, loaded)
    out_dir = Path(args.out)
    quiet = args.quiet or args.json
    if args.history_dir:
        os.environ["LLMGUARD_HISTORY_DIR"] = args.history_dir
    if args.cache:
        os.environ["LLMGUARD_CACHE"] = args.cache  # read by llmguard_ops.generation.store_folder
    live = _live_display(quiet, loaded)
    if not quiet and live is None:
        print(f"suite {loaded.suite.name} ({loaded.path.name}, sha256 {loaded.sha256[:12]}): "
              f"{len(loaded.suite.checks)} checks")
    if live is not None:
        with live:
            outcome = run_suite(loaded, host, out_dir, progress=live, evidence=evidence)
    else:
        outcome = run_suite(loaded, host, out_dir, progress=TerminalProgress(quiet=quiet), evidence=evidence)
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(outcome.report.to_json_dict(), indent=2, sort_keys=True))
        for line in evidence_lines(outcome):  # stdout holds only JSON
            print(line, file=sys.stderr)
    elif live is not None:
        live.summary(outcome.report, outcome.written)
        for line in evidence_lines(outcome):
            print(line)
    else:
        print(summary(outcome.report), end="")
        print(f"outputs: {', '.join(str(p) for p in outcome.written)}")
        for line in evidence_lines(outcome):
            print(line)
    return outcome.report.decision.exit_code


def cmd_validate(args: argparse.Namespace) -> int:
    from .artifacts import check_model_paths, load_datasets
    from .evidence.waivers import suite_entries
    from .loading import load_suite

    host = _host(args)
    _report_failures(host)
    registry = host.registry()
    loaded = load_suite(args.suite, registry, overrides=args.set or [])
    load_datasets(loaded, registry)
    check_model_paths(loaded, registry)
    suite_entries(loaded)  # each waiver must name a check of the suite
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


def cmd_keygen(args: argparse.Namespace) -> int:
    from .evidence.keys import cmd_keygen as run

    return run(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from .evidence.verify import cmd_verify as run

    return run(args)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .evidence.audit import cmd_audit_verify as run

    return run(args)


def cmd_lock(args: argparse.Namespace) -> int:
    from .evidence.lock import cmd_lock as run

    return run(args)


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
    run.add_argument("--cache", metavar="DIR",
                     help="generation cache shared across runs (default: $LLMGUARD_CACHE or OUT/cache); "
                     "a rerun pays only for generations not cached yet")
    evidence = run.add_argument_group("evidence")
    evidence.add_argument("--key", metavar="PATH",
                          help="ed25519 private key (PEM) signing the attestation and the "
                               "audit-log head (default: the file named by $LLMGUARD_SIGNING_KEY)")
    evidence.add_argument("--dev-key", action="store_true",
                          help="sign with a throw-away development key (integrity only; does not "
                               "satisfy policy.require_signature)")
    evidence.add_argument("--lock", metavar="FILE",
                          help="refuse to run (exit 2) if the suite's terms differ from this lock")
    evidence.add_argument("--lock-key", metavar="PUB",
                          help="public key that signed --lock (default: --key's)")
    evidence.add_argument("--waiver", action="append", metavar="FILE",
                          help="waiver file (YAML list); repeatable")
    evidence.add_argument("--audit-log", default=".llmguard/audit.jsonl", metavar="PATH",
                          help="audit log to append to (default: .llmguard/audit.jsonl)")
    evidence.add_argument("--no-audit-log", action="store_true", help="append to no audit log")
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

    keygen = sub.add_parser("keygen", help="write an ed25519 key pair (PEM) for signing")
    keygen.add_argument("--out", required=True, metavar="DIR",
                        help="folder for llmguard.key and llmguard.pub")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key pair")
    keygen.set_defaults(func=cmd_keygen)

    verify = sub.add_parser("verify",
                            help="verify an attestation (exit 0 valid, 1 invalid, 2 error)")
    verify.add_argument("attestation", help="attestation.dsse.json")
    verify.add_argument("--key", required=True, metavar="PUB", help="the signer's public key (PEM)")
    verify.add_argument("--artifact", action="append", metavar="PATH",
                        help="model file or folder (or output file) whose sha256 must match the "
                             "attestation; repeatable")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)

    audit = sub.add_parser("audit", help="audit-log commands")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    audit_sub.required = True
    audit_verify = audit_sub.add_parser(
        "verify", help="check the hash chain and head (0 intact, 1 broken, 2 error)")
    audit_verify.add_argument("--log", default=".llmguard/audit.jsonl", metavar="PATH")
    audit_verify.add_argument("--key", metavar="PUB",
                              help="check the head's signature with this public key")
    audit_verify.add_argument("--json", action="store_true")
    audit_verify.set_defaults(func=cmd_audit_verify)

    lock = sub.add_parser("lock",
                          help="sign a suite's gates, severities and policy into a lock file")
    lock.add_argument("suite")
    lock.add_argument("--key", required=True, metavar="PATH", help="ed25519 private key (PEM)")
    lock.add_argument("--out", metavar="FILE",
                      help="lock file (default: SUITE's name + .lock.json)")
    lock.add_argument("--set", action="append", metavar="PATH=VALUE")
    lock.set_defaults(func=cmd_lock)

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
