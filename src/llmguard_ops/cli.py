"""The ``llmguard`` command line: a thin shell over the library.

Exit status (contract): 0 PROMOTE, 1 BLOCK, 3 REVIEW, 2 an error in the suite or its
inputs. Expected errors print as one line each, without a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

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

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        text = str(message)
        if text not in seen:
            from .terminal import clean

            seen.add(text)
            print(f"warning: {clean(text)}", file=sys.stderr)

    warnings.showwarning = show


#: Offline by default: no hub access, no telemetry from libraries a check imports (also
#: handed to the workers of a cluster by the Ray executor).
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def _quiet_third_parties() -> None:
    """Offline by default: no hub access, no telemetry from libraries a check imports."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)


def _host(args: argparse.Namespace) -> Any:
    from .plugins import get_plugin_manager, parse_plugin_options

    load, block = parse_plugin_options(args.plugin or [])
    return get_plugin_manager(plugins=load, blocked=block)


def _report_failures(host: Any) -> None:
    for failure in host.registry().failures:
        print(f"warning: {failure.line()}", file=sys.stderr)


def _live_display(quiet: bool, loaded: Any) -> Any:
    """rich progress on a terminal; None for plain lines (pipes, CI logs, --quiet, --json).

    A supervised run's child learns from its parent whether the parent's stdout wants it.
    """
    from .supervise import LIVE_ENV, TERMINAL_ENV
    from .terminal_live import LiveDisplay, wanted

    if os.environ.get(LIVE_ENV) is not None:
        if quiet or os.environ.get(LIVE_ENV) != "1":
            return None
        console = None
        if os.environ.get(TERMINAL_ENV) == "1":
            from rich.console import Console

            console = Console(highlight=False, force_terminal=True)
        live = LiveDisplay(len(loaded.suite.checks), console=console)
    elif not wanted(quiet):
        return None
    else:
        live = LiveDisplay(len(loaded.suite.checks))
    live.header(loaded.suite.name, loaded.path, loaded.sha256, len(loaded.suite.checks))
    return live


def cmd_run(args: argparse.Namespace, channel: Any = None) -> int:
    """The run itself (in the supervised child; see :mod:`llmguard_ops.supervise`)."""
    from .evidence.options import evidence_lines, evidence_options
    from .loading import load_suite
    from .runner import run_suite
    from .supervise import ChildChannel
    from .terminal import TerminalProgress, summary

    channel = channel or ChildChannel(None, None)
    channel.phase("loading plugins")
    host = _host(args)
    _report_failures(host)
    channel.phase("validating the suite")
    loaded = load_suite(args.suite, host.registry(), overrides=args.set or [])
    channel.plan(loaded, args.timeout)
    channel.phase("loading models and datasets")
    evidence = evidence_options(args, loaded, host.registry())
    out_dir = Path(args.out)
    quiet = args.quiet or args.json
    if args.history_dir:
        os.environ["LLMGUARD_HISTORY_DIR"] = args.history_dir
    if args.cache:
        os.environ["LLMGUARD_CACHE"] = args.cache  # read by llmguard_ops.generation.store_folder
    live = _live_display(quiet, loaded)
    if not quiet and live is None:
        print(
            f"suite {loaded.suite.name} ({loaded.path.name}, sha256 {loaded.sha256[:12]}): "
            f"{len(loaded.suite.checks)} checks"
        )
    shown = live if live is not None else TerminalProgress(quiet=quiet)

    def progress(event: str, data: dict[str, Any]) -> None:
        channel.progress(event, data)
        shown(event, data)
        if event == "check_end" and data["id"] == loaded.suite.checks[-1].id:
            channel.phase("writing the report and evidence")

    options: dict[str, Any] = {"address": args.ray_address} if args.ray_address else {}
    if args.inference_actors is not None:
        options["inference_actors"] = args.inference_actors
    where: dict[str, Any] = dict(executor=args.executor, executor_options=options)
    if live is not None:
        with live:
            outcome = run_suite(
                loaded, host, out_dir, progress=progress, evidence=evidence, run_id=channel.run_id, **where
            )
    else:
        outcome = run_suite(loaded, host, out_dir, progress=progress, evidence=evidence, run_id=channel.run_id, **where)
    channel.phase("printing the summary")
    from .terminal import clean

    for warning in outcome.warnings:
        print(f"warning: {clean(warning)}", file=sys.stderr)
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
    from .errors import SuiteError
    from .evidence.waivers import suite_entries
    from .loading import SuiteErrors, load_suite

    host = _host(args)
    _report_failures(host)
    registry = host.registry()
    loaded = load_suite(args.suite, registry, overrides=args.set or [])
    errors: list[SuiteError] = []
    for step in (load_datasets, check_model_paths, lambda s, _: suite_entries(s)):  # every problem at once
        try:
            step(loaded, registry)  # waivers: each must name a check of the suite
        except SuiteErrors as exc:
            errors.extend(exc.errors)
        except SuiteError as exc:
            errors.append(exc)
    if errors:
        raise SuiteErrors(errors)
    print(
        f"{args.suite}: valid ({len(loaded.suite.checks)} checks, {len(loaded.suite.models)} models, "
        f"{len(loaded.suite.datasets)} datasets)"
    )
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
        for kind, items in sorted(registry.extensions.items()):
            print(f"\n{kind}s:")
            for name, item in sorted(items.items()):
                print(f"  {name}  (plugin {item.plugin} {item.plugin_version or '-'})  {item.summary}")
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


def cmd_approve(args: argparse.Namespace) -> int:
    from .evidence.approvals import cmd_approve as run

    return run(args)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .evidence.audit import cmd_audit_verify as run

    return run(args)


def cmd_audit_head(args: argparse.Namespace) -> int:
    from .evidence.audit import cmd_audit_head as run

    return run(args)


def cmd_audit_seal(args: argparse.Namespace) -> int:
    from .evidence.audit import cmd_audit_seal as run

    return run(args)


def cmd_fleet_verify(args: argparse.Namespace) -> int:
    from .fleet import cmd_fleet_verify as run

    return run(args)


def cmd_lock(args: argparse.Namespace) -> int:
    from .evidence.lock import cmd_lock as run

    return run(args)


def _actors(value: str) -> int:
    """``--inference-actors``: a count from 0 (no actor pool) to 1024."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if not 0 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1024, got {n}")
    return n


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
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="overall limit of the run, after which it is stopped and BLOCKs "
        "(default: the checks' timeouts plus time to load and report)",
    )
    run.add_argument(
        "--history-dir",
        metavar="DIR",
        help="run history folder (default: $LLMGUARD_HISTORY_DIR or ./.llmguard/runs; 'off' disables)",
    )
    run.add_argument(
        "--cache",
        metavar="DIR",
        help="generation cache shared across runs (default: $LLMGUARD_CACHE or OUT/cache); "
        "a rerun pays only for generations not cached yet",
    )
    run.add_argument(
        "--executor",
        metavar="NAME",
        help="where checks run: local (this process) or ray (Ray tasks placed by resources); "
        "default: the suite's policy.executor",
    )
    run.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to join with --executor ray (host:port, ray://host:10001 or auto; "
        "default: $RAY_ADDRESS, else a local Ray started for the run)",
    )
    run.add_argument(
        "--inference-actors",
        metavar="N",
        type=_actors,
        help="compute model predictions and generations on N Ray actors (Ray Data), with either "
        "executor; 0: in each check's own process (default: the suite's policy.inference_actors)",
    )
    evidence = run.add_argument_group("evidence")
    evidence.add_argument(
        "--key",
        metavar="PATH",
        help="ed25519 private key (PEM) signing the attestation and the "
        "audit-log head (default: the file named by $LLMGUARD_SIGNING_KEY)",
    )
    evidence.add_argument(
        "--dev-key",
        action="store_true",
        help="sign with a throw-away development key (integrity only; does not satisfy policy.require_signature)",
    )
    evidence.add_argument(
        "--lock", metavar="FILE", help="refuse to run (exit 2) if the suite's terms differ from this lock"
    )
    evidence.add_argument("--lock-key", metavar="PUB", help="public key that signed --lock (default: --key's)")
    evidence.add_argument("--waiver", action="append", metavar="FILE", help="waiver file (YAML list); repeatable")
    evidence.add_argument(
        "--audit-log",
        default=".llmguard/audit.jsonl",
        metavar="PATH",
        help="audit log to append to (default: .llmguard/audit.jsonl)",
    )
    evidence.add_argument("--no-audit-log", action="store_true", help="append to no audit log")
    fleet = run.add_argument_group("fleets (one supervised run per candidate, into OUT/<candidate>/)")
    fleet.add_argument(
        "--matrix",
        metavar="FILE",
        help="matrix file (YAML) listing candidates (name + set: overrides); default: the suite's 'matrix:'",
    )
    fleet.add_argument("--no-matrix", action="store_true", help="ignore the suite's 'matrix:'; run the suite once")
    fleet.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="candidates run at a time (default: the CPU count, at most 32; on Ray: as the cluster allows)",
    )
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
    keygen.add_argument("--out", required=True, metavar="DIR", help="folder for llmguard.key and llmguard.pub")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing key pair")
    keygen.set_defaults(func=cmd_keygen)

    verify = sub.add_parser("verify", help="verify an attestation (exit 0 valid, 1 invalid, 2 error)")
    verify.add_argument("attestation", help="attestation.dsse.json")
    verify.add_argument("--key", required=True, metavar="PUB", help="the signer's public key (PEM)")
    verify.add_argument(
        "--artifact",
        action="append",
        metavar="PATH",
        help="model file or folder that must be the candidate of a PROMOTE (exit 0 means exactly that); repeatable",
    )
    verify.add_argument(
        "--role",
        action="append",
        metavar="NAME",
        help="accept artifacts that match this subject instead (e.g. baseline), "
        "or 'output' for the run's output files; repeatable",
    )
    verify.add_argument(
        "--allow-decision",
        action="append",
        metavar="DECISION",
        type=str.upper,
        choices=["REVIEW", "BLOCK"],
        help="accept an artifact of a REVIEW or BLOCK decision (reported as such)",
    )
    verify.add_argument(
        "--allow-dev-key",
        action="store_true",
        help="accept a development-key signature or a key lying beside the "
        "attestation (integrity only, reported as UNTRUSTED)",
    )
    verify.add_argument(
        "--report",
        metavar="REPORT_JSON",
        help="report.json that must be the attested one (default: the one beside the attestation, when present)",
    )
    verify.add_argument(
        "--approvals",
        metavar="DIR",
        help="folder of signed approvals: a REVIEW passes when they satisfy the run's policy.approvals (needs --trust)",
    )
    verify.add_argument(
        "--trust", metavar="FILE", help="trust file (YAML): whose keys count, for the run and approvals"
    )
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(func=cmd_verify)

    approve = sub.add_parser("approve", help="sign a reviewer's approval (or rejection) of a run's attestation")
    approve.add_argument("attestation", help="attestation.dsse.json of the run")
    approve.add_argument("--key", required=True, metavar="PATH", help="the reviewer's ed25519 private key (PEM)")
    approve.add_argument(
        "--as", dest="name", required=True, metavar="NAME", help="the reviewer's name, as the trust file lists it"
    )
    approve.add_argument("--role", required=True, metavar="ROLE", help="e.g. ml-lead, risk")
    approve.add_argument("--reason", required=True, metavar="TEXT", help="what was accepted, and why")
    approve.add_argument("--expires", metavar="DATE", help="date or RFC 3339 time it lapses")
    approve.add_argument("--reject", action="store_true", help="record a rejection instead")
    approve.add_argument(
        "--out", metavar="DIR", help="folder for the approval (default: approvals/ beside the attestation)"
    )
    approve.add_argument("--audit-log", metavar="PATH", help="audit log to append the approval to")
    approve.add_argument(
        "--audit-key", metavar="PATH", help="private key that signs the audit log's head (default: --key)"
    )
    approve.set_defaults(func=cmd_approve)

    audit = sub.add_parser("audit", help="audit-log commands")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="COMMAND")
    audit_sub.required = True
    audit_verify = audit_sub.add_parser("verify", help="check the hash chain and head (0 intact, 1 broken, 2 error)")
    audit_verify.add_argument("--log", default=".llmguard/audit.jsonl", metavar="PATH")
    audit_verify.add_argument("--key", metavar="PUB", help="check the head's signature with this public key")
    audit_verify.add_argument(
        "--head",
        metavar="FILE",
        help="a head exported earlier (audit head --out): the log must "
        "still extend it (catches truncation with a rolled-back head)",
    )
    audit_verify.add_argument("--json", action="store_true")
    audit_verify.set_defaults(func=cmd_audit_verify)
    audit_head = audit_sub.add_parser("head", help="verify the log and export its signed head, to publish elsewhere")
    audit_head.add_argument("--log", default=".llmguard/audit.jsonl", metavar="PATH")
    audit_head.add_argument("--key", metavar="PUB", help="check the head's signature first")
    audit_head.add_argument("--out", metavar="FILE", help="write the head here (default: stdout)")
    audit_head.set_defaults(func=cmd_audit_head)
    audit_seal = audit_sub.add_parser(
        "seal", help="move a (broken) log aside and start a new one that records its sha256"
    )
    audit_seal.add_argument("--log", default=".llmguard/audit.jsonl", metavar="PATH")
    audit_seal.add_argument("--key", metavar="PATH", help="private key signing the new log's head (the runs' key)")
    audit_seal.add_argument("--reason", metavar="TEXT", help="why the log is sealed (recorded)")
    audit_seal.set_defaults(func=cmd_audit_seal)

    fleet_cmd = sub.add_parser("fleet", help="fleet commands (a fleet is 'llmguard run SUITE --matrix FILE')")
    fleet_sub = fleet_cmd.add_subparsers(dest="fleet_command", metavar="COMMAND")
    fleet_sub.required = True
    fleet_verify = fleet_sub.add_parser(
        "verify", help="check fleet.dsse.json and the digests and attestations it names (0 intact, 1 not, 2 error)"
    )
    fleet_verify.add_argument("out", metavar="OUT", help="the fleet's output folder (holding fleet.json)")
    fleet_verify.add_argument("--key", required=True, metavar="PUB", help="the signer's public key (PEM)")
    fleet_verify.set_defaults(func=cmd_fleet_verify)

    lock = sub.add_parser("lock", help="sign a suite's gates, severities and policy into a lock file")
    lock.add_argument("suite")
    lock.add_argument("--key", required=True, metavar="PATH", help="ed25519 private key (PEM)")
    lock.add_argument("--out", metavar="FILE", help="lock file (default: SUITE's name + .lock.json)")
    lock.add_argument("--set", action="append", metavar="PATH=VALUE")
    lock.add_argument(
        "--datasets",
        choices=["rows", "digest", "none"],
        default="rows",
        help="lock each dataset's minimum row count (default), its sha256, or neither",
    )
    lock.set_defaults(func=cmd_lock)

    scaffold = sub.add_parser("new-plugin", help="start a check plugin distribution from the template")
    scaffold.add_argument("name", help="plugin name, e.g. data_quality (check names become NAME.*)")
    scaffold.add_argument("--out", default=".", help="parent folder (default: .)")
    scaffold.add_argument("--folder", help="folder name (default: llmguard-NAME)")
    scaffold.set_defaults(func=cmd_new_plugin)

    from .report_commands import add_commands

    add_commands(sub)
    from .monitor.cli import add_commands as add_monitor_commands

    add_monitor_commands(sub)
    return parser


def _run_child(args: argparse.Namespace) -> NoReturn:
    """The supervised child of ``llmguard run``: run, tell the parent, leave at once.

    ``os._exit`` after flushing, so a non-daemon thread a check left behind cannot keep
    the process alive; ``done.json`` is written only on a normal end.
    """
    import traceback

    from .redact import for_suite_file
    from .supervise import ChildChannel, RedactingStream

    channel = ChildChannel.from_environment()
    redactor = for_suite_file(args.suite)
    sys.stdout = RedactingStream(sys.stdout, redactor)
    sys.stderr = RedactingStream(sys.stderr, redactor)
    normal, code = False, EXIT_ERROR
    try:
        code, normal = cmd_run(args, channel), True
    except LlmguardError as exc:
        print(str(exc), file=sys.stderr)
        code, normal = EXIT_ERROR, True
    except BaseException:  # any other ending is abnormal: the parent writes a BLOCK report
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    if normal:
        channel.done(code)
    os._exit(code if normal else 70)


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_third_parties()
    _one_line_warnings()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.func is cmd_run:
        from .supervise import CONTROL_ENV, supervise

        if os.environ.get(CONTROL_ENV):
            _run_child(args)
        from .fleet import fleet_of, run_fleet_cli

        try:
            matrix = fleet_of(args)
            if matrix is not None:  # --executor/--ray-address, where this CLI has them, place the candidates
                return run_fleet_cli(
                    argv, args, matrix, getattr(args, "executor", None), getattr(args, "ray_address", None)
                )
        except LlmguardError as exc:  # a bad matrix, key or audit log: before any candidate runs
            from .terminal import clean

            print(clean(str(exc)), file=sys.stderr)
            return EXIT_ERROR
        from .terminal_live import wanted

        return supervise(argv, args, live=wanted(args.quiet or args.json))
    try:
        code: int = args.func(args)
        return code
    except LlmguardError as exc:
        from .terminal import clean

        print(clean(str(exc)), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
