"""Fleets: one suite, many candidates, each a full supervised ``llmguard run``.

``llmguard run SUITE --matrix models.yaml`` (or a suite's own ``matrix:``) runs the
suite once per candidate of the matrix (:mod:`llmguard_ops.matrix`), with the
candidate's overrides given as ``--set`` and its own output folder ``OUT/<name>/``. Each
candidate is exactly the run ``llmguard run SUITE --set ... --out OUT/<name>`` would be:
the same supervising parent (:class:`~llmguard_ops.supervise.Supervisor`) starts the
same child, so each gets its own report, attestation and audit-log entry, and a
candidate whose child crashes gets the supervisor's BLOCK report. The fleet parent runs
no suite code itself.

Candidates run ``--jobs N`` at a time: threads here, each waiting on its child
(``executor="local"``), or as Ray tasks (``executor="ray"``) that start the same
supervised child on a worker of the cluster. Each candidate's output goes to
``OUT/logs/<name>.log``.

The fleet writes ``OUT/fleet.json`` (each candidate's decision, exit status, report and
attestation digests, failing gates), ``OUT/fleet.md`` (a table) and ``OUT/fleet.dsse.json``,
a DSSE envelope over the exact bytes of fleet.json signed with the runs' key.

Exit status of a fleet (:func:`fleet_exit`), the worst candidate wins:

* 2 when any candidate's run exited 2 (an error in the suite, its inputs or its
  overrides: nothing was decided for it);
* else 1 when any candidate is BLOCK, or ERROR (its run ended without a report of its
  own, e.g. its Ray task or worker was lost: never counted as passing);
* else 3 when any candidate is REVIEW;
* else 0: every candidate PROMOTEs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .artifacts import sha256_file
from .errors import LlmguardError
from .report import now_rfc3339

if TYPE_CHECKING:
    from .evidence.keys import SigningKey
    from .matrix import LoadedMatrix

FLEET_SCHEMA = "https://llmguard.dev/schemas/fleet/v1"
FLEET_PAYLOAD_TYPE = "application/vnd.llmguard.fleet+json"
FLEET_JSON, FLEET_MD, FLEET_DSSE = "fleet.json", "fleet.md", "fleet.dsse.json"
DEV_PUBLIC_NAME = "development-key.pub"
MAX_DEFAULT_JOBS = 32
EXIT_RULE = (
    "2 if any candidate's run exited 2 (suite or input error); else 1 if any candidate is BLOCK "
    "or ERROR (no report of its own); else 3 if any is REVIEW; else 0"
)
# options of the fleet itself, not passed on to each candidate's run (True: takes a value).
# In a fleet, --executor/--ray-address say where the candidates run; each candidate's own
# checks then run in its task, not as tasks of their own.
FLEET_OPTIONS = {"--matrix": True, "--jobs": True, "--no-matrix": False, "--executor": True, "--ray-address": True}
# the driver's settings a candidate's run reads from the environment (sent to Ray workers)
_ENV_PREFIXES = ("LLMGUARD_", "HF_", "TRANSFORMERS_")
_TOP_LEVEL_MATRIX = re.compile(r"^[\"']?matrix[\"']?\s*:", re.MULTILINE)


class FleetError(LlmguardError):
    """A fleet that cannot start (bad options or matrix): exit 2."""


# -- which fleet ---------------------------------------------------------------------------


def _suite_mentions_matrix(suite: str) -> bool:
    """A cheap look for a top-level ``matrix:`` before parsing anything (plain runs stay light)."""
    try:
        with open(suite, "rb") as fh:
            text = fh.read(1 << 20).decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_TOP_LEVEL_MATRIX.search(text))


def fleet_of(args: Any) -> LoadedMatrix | None:
    """The matrix this ``llmguard run`` is a fleet of, or None for a single run."""
    matrix, off, jobs = getattr(args, "matrix", None), getattr(args, "no_matrix", False), getattr(args, "jobs", None)
    if matrix and off:
        raise FleetError("--matrix and --no-matrix exclude each other")
    if jobs is not None and jobs < 1:
        raise FleetError(f"--jobs must be at least 1, got {jobs}")
    loaded = None
    if matrix:
        from .matrix import load_matrix

        loaded = load_matrix(matrix)
    elif not off and _suite_mentions_matrix(args.suite):
        from .matrix import suite_matrix

        loaded = suite_matrix(args.suite)
    if loaded is None and jobs is not None:
        raise FleetError("--jobs applies to fleets only (--matrix FILE, or a suite with 'matrix:')")
    return loaded


def candidate_argv(argv: Sequence[str], out_dir: Path, overrides: Sequence[str]) -> list[str]:
    """The argv of one candidate's ``llmguard run``: the fleet's, less the fleet's own
    options, with its overrides appended (after the user's ``--set``, so they win) and
    its own ``--out`` (the last ``--out`` counts) and ``--no-matrix``."""
    out: list[str] = []
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        name, eq, _ = tokens[i].partition("=")
        if name in FLEET_OPTIONS:
            i += 1 if eq or not FLEET_OPTIONS[name] else 2
            continue
        out.append(tokens[i])
        i += 1
    for text in overrides:
        out += ["--set", text]
    return [*out, "--out", str(out_dir), "--no-matrix"]


def default_jobs(candidates: int) -> int:
    return max(1, min(os.cpu_count() or 1, MAX_DEFAULT_JOBS, candidates))


# -- one candidate ---------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return None
    lines = [line for line in lines if line]
    errors = [line for line in lines if "error" in line.lower()]
    found = errors or lines
    return found[-1] if found else None


def _failing(report: dict[str, Any]) -> list[str]:
    """Each failed gate and each check that ended in ERROR, as one line."""
    out = []
    for check in report.get("checks") or []:
        if check.get("status") == "error":
            error = check.get("error") or {}
            out.append(f"{check.get('id')}: ERROR: {error.get('type')}: {error.get('message')}")
        for gate in check.get("gates") or []:
            if not gate.get("passed", True):
                out.append(f"{check.get('id')}: {gate.get('reason') or gate.get('metric')}")
    return out


def _attestation(path: Path, run_id: str | None) -> tuple[str | None, bool]:
    """sha256 of the run's attestation and whether it carries a signature (None: not this run's)."""
    try:
        raw = path.read_bytes()
        envelope = json.loads(raw)
        statement = json.loads(base64.b64decode(envelope["payload"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None, False
    if not isinstance(statement, dict) or (statement.get("predicate") or {}).get("run_id") != run_id:
        return None, False
    return hashlib.sha256(raw).hexdigest(), bool(envelope.get("signatures"))


def collect(spec: dict[str, Any], exit_status: int | None, run_id: str | None, problem: str | None) -> dict[str, Any]:
    """The fleet's record of one candidate, read from its output folder."""
    out_dir = Path(spec["out"])
    record: dict[str, Any] = {
        "name": spec["name"],
        "description": spec.get("description"),
        "overrides": spec["overrides"],
        "out": spec["out_rel"],
        "log": spec["log_rel"],
        "run_id": run_id,
        "exit_status": exit_status,
        "decision": "ERROR",
        "reasons": [],
        "failing_gates": [],
        "report": None,
        "report_sha256": None,
        "attestation": None,
        "attestation_sha256": None,
        "signed": False,
        "problem": problem,
    }
    report_path = out_dir / "report.json"
    report = _read_json(report_path)
    if run_id is not None and isinstance(report, dict) and report.get("run_id") == run_id:
        decision = (report.get("decision") or {}).get("decision")
        record.update(
            decision=decision if decision in ("PROMOTE", "REVIEW", "BLOCK") else "ERROR",
            reasons=list((report.get("decision") or {}).get("reasons") or []),
            failing_gates=_failing(report),
            report=f"{spec['out_rel']}/report.json",
            report_sha256=sha256_file(report_path),
            suite=report.get("suite"),
        )
        digest, signed = _attestation(out_dir / "attestation.dsse.json", run_id)
        if digest is not None:
            record.update(
                attestation=f"{spec['out_rel']}/attestation.dsse.json", attestation_sha256=digest, signed=signed
            )
    if record["decision"] == "ERROR" and record["problem"] is None:
        last = _last_line(Path(spec["log"]))
        record["problem"] = f"the run exited {exit_status} without a report of its own" + (f": {last}" if last else "")
    return record


def run_candidate(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one candidate under the same supervisor as ``llmguard run``; never raises."""
    from .cli import build_parser
    from .supervise import Supervisor

    started = time.monotonic()
    log = Path(spec["log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    code: int | None = None
    run_id: str | None = None
    problem: str | None = None
    with open(log, "w", encoding="utf-8", buffering=1) as sink:
        try:
            args = build_parser().parse_args(spec["argv"])
            env = {**os.environ, **(spec.get("env") or {})}
            supervisor = Supervisor(spec["argv"], args, stdout=sink, stderr=sink, env=env)
            run_id = supervisor.run_id
            code = supervisor.run(live=False)
        except SystemExit as exc:  # argparse refused the candidate's options
            code = exc.code if isinstance(exc.code, int) else 2
            problem = f"its options were refused (exit {code}); see {spec['log_rel']}"
        except Exception as exc:  # the fleet's own failure for this candidate: recorded, not lost
            problem = f"the fleet could not run it: {type(exc).__name__}: {exc}"
            print(problem, file=sink)
    record = collect(spec, code, run_id, problem)
    record["duration_s"] = round(time.monotonic() - started, 3)
    record["host"] = socket.gethostname()
    return record


def _ray_candidate(spec: dict[str, Any]) -> dict[str, Any]:
    """A candidate as a Ray task: in the driver's folder, then as :func:`run_candidate`."""
    if spec.get("cwd") and Path.cwd() != Path(spec["cwd"]):
        os.chdir(spec["cwd"])  # relative paths (suite, audit log, history) mean what they meant to the driver
    return run_candidate(spec)


def lost(spec: dict[str, Any], problem: str) -> dict[str, Any]:
    """The record of a candidate whose run never came back (its task or worker died)."""
    record = collect(spec, None, None, problem)
    record["duration_s"] = None
    record["host"] = None
    return record


# -- many ------------------------------------------------------------------------------------


def run_local(specs: list[dict[str, Any]], jobs: int, done: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """Candidates in threads (each waits on its own supervised child), ``jobs`` at a time."""
    results: dict[str, dict[str, Any]] = {}
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="llmguard-fleet")
    futures = {pool.submit(run_candidate, spec): spec for spec in specs}
    try:
        for future in as_completed(futures):
            spec = futures[future]
            try:
                results[spec["name"]] = future.result()
            except Exception as exc:  # run_candidate does not raise; belt and braces
                results[spec["name"]] = lost(spec, f"{type(exc).__name__}: {exc}")
            done(results[spec["name"]])
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # the children got the same Ctrl-C
        for spec in specs:
            if spec["name"] not in results:
                results[spec["name"]] = lost(spec, "not run: the fleet was interrupted")
        raise _Interrupted([results[s["name"]] for s in specs]) from None
    pool.shutdown(wait=True)
    return [results[s["name"]] for s in specs]


class _Interrupted(Exception):
    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__("interrupted")
        self.records = records


def run_ray(
    specs: list[dict[str, Any]],
    jobs: int,
    done: Callable[[dict[str, Any]], None],
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Each candidate a Ray task (one CPU) that starts the same supervised child on a worker.

    Uses the Ray session already started in this process, else starts or joins one
    (``address``; None starts a local one) and stops it afterwards. At most ``jobs`` tasks
    are in flight. A task that fails (its worker died) is the candidate's ERROR, never
    retried behind the user's back (a retry would be a second run with its own audit entry).
    """
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_candidate)
        queue = list(specs)
        pending: dict[Any, dict[str, Any]] = {}
        results: dict[str, dict[str, Any]] = {}
        while queue or pending:
            while queue and len(pending) < jobs:
                spec = queue.pop(0)
                pending[task.remote(spec)] = spec
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    results[spec["name"]] = ray.get(ref)
                except Exception as exc:  # RayTaskError, WorkerCrashedError, NodeDiedError ...
                    results[spec["name"]] = lost(spec, f"its Ray task failed: {type(exc).__name__}: {exc}")
                done(results[spec["name"]])
        return [results[s["name"]] for s in specs]
    finally:
        if started:
            ray.shutdown()


# -- the summary -----------------------------------------------------------------------------


def fleet_exit(records: Sequence[dict[str, Any]]) -> int:
    """The fleet's exit status (see the module doc): the worst candidate wins."""
    if any(r.get("exit_status") == 2 for r in records):
        return 2
    decisions = {r.get("decision") for r in records}
    if decisions & {"BLOCK", "ERROR"}:
        return 1
    if "REVIEW" in decisions:
        return 3
    return 0


def _signer(args: Any) -> SigningKey | None:
    """The runs' signing key, loaded once more to sign the summary (a bad key stops the fleet first)."""
    from .evidence.keys import development_key, key_from_environment, load_private

    if getattr(args, "key", None):
        if getattr(args, "dev_key", False):
            raise FleetError("--key and --dev-key exclude each other")
        return load_private(Path(args.key))
    if getattr(args, "dev_key", False):
        return development_key()
    return key_from_environment()


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_md(summary: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {d}" for d, n in summary["counts"].items() if n)
    matrix = summary["matrix"]
    lines = [
        f"# Fleet: {summary['suite'].get('name') or summary['suite']['path']}",
        "",
        f"- suite: `{summary['suite']['path']}`"
        + (f" (sha256 `{summary['suite']['sha256'][:12]}`)" if summary["suite"].get("sha256") else ""),
        f"- matrix: `{matrix['file']}` (sha256 `{matrix['sha256'][:12]}`), {len(summary['candidates'])} candidates",
        f"- executor: {summary['executor']}, {summary['jobs']} at a time, {summary['duration_s']:.1f} s",
        f"- decided: {counts}; exit status **{summary['exit_status']}** ({summary['exit_rule']})",
        "",
        "| candidate | decision | exit | failing gates | report sha256 | attestation sha256 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in summary["candidates"]:
        failing = "<br>".join(_cell(f) for f in c["failing_gates"]) or (_cell(c["problem"]) if c.get("problem") else "")
        report = f"[`{c['report_sha256'][:12]}`]({c['report']})" if c.get("report_sha256") else "-"
        att = (
            f"`{c['attestation_sha256'][:12]}`" + ("" if c["signed"] else " (unsigned)")
            if c.get("attestation_sha256")
            else "-"
        )
        exit_status = "-" if c["exit_status"] is None else str(c["exit_status"])
        lines.append(f"| {_cell(c['name'])} | **{c['decision']}** | {exit_status} | {failing} | {report} | {att} |")
    return "\n".join(lines) + "\n"


def write_summary(out: Path, summary: dict[str, Any], signer: SigningKey | None) -> list[Path]:
    """fleet.json, fleet.md and fleet.dsse.json (signed over fleet.json's exact bytes)."""
    from .evidence import dsse
    from .evidence.keys import public_pem
    from .report import atomic_write

    if signer is not None:
        summary["signing"] = {"algorithm": "ed25519", "keyid": signer.keyid, "development_key": signer.development}
    data = (json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    written = [atomic_write(out / FLEET_JSON, data), atomic_write(out / FLEET_MD, render_md(summary).encode("utf-8"))]
    if signer is not None and signer.development:
        written.append(atomic_write(out / DEV_PUBLIC_NAME, public_pem(signer.public)))
    envelope = (
        dsse.sign(data, signer.private, signer.keyid, FLEET_PAYLOAD_TYPE)
        if signer is not None
        else dsse.unsigned(data, FLEET_PAYLOAD_TYPE)
    )
    written.append(atomic_write(out / FLEET_DSSE, dsse.serialize(envelope)))
    return written


def verify_fleet(out: Path, public_key: Any, keyid: str | None) -> list[str]:
    """Problems with a fleet folder (empty: intact): the envelope verifies over fleet.json's
    bytes, and every report and attestation it names still has the recorded sha256."""
    from .evidence import dsse

    out = Path(out)
    try:
        verified = dsse.verify((out / FLEET_DSSE).read_bytes(), public_key, keyid, FLEET_PAYLOAD_TYPE)
        data = (out / FLEET_JSON).read_bytes()
    except (OSError, dsse.VerificationError) as exc:
        return [f"{FLEET_DSSE}: {exc}"]
    if verified.payload != data:
        return [f"{FLEET_JSON} is not the file {FLEET_DSSE} signed"]
    summary = json.loads(data)
    # the runs were signed with the fleet's key, unless each made its own development key
    same_key = not (summary.get("signing") or {}).get("development_key", False)
    problems = []
    for cand in summary["candidates"]:
        for kind in ("report", "attestation"):
            name, digest = cand.get(kind), cand.get(f"{kind}_sha256")
            if name is None:
                continue
            path = out / name
            if not path.is_file():
                problems.append(f"{cand['name']}: {name} is missing")
            elif sha256_file(path) != digest:
                problems.append(f"{cand['name']}: {name} was changed since the fleet ran")
            elif kind == "attestation" and cand.get("signed") and same_key:
                problems += _attestation_problems(cand, path, public_key, keyid)
    return problems


def _attestation_problems(cand: dict[str, Any], path: Path, public_key: Any, keyid: str | None) -> list[str]:
    from .evidence.dsse import VerificationError
    from .evidence.verify import verify_attestation

    try:
        verified = verify_attestation(path.read_bytes(), public_key, keyid or "")
    except VerificationError as exc:
        return [f"{cand['name']}: its attestation does not verify with this key: {exc}"]
    if verified.predicate.get("run_id") != cand.get("run_id"):
        return [f"{cand['name']}: its attestation is not the run the fleet recorded"]
    return []


def cmd_fleet_verify(args: Any) -> int:
    """``llmguard fleet verify OUT --key PUB``: 0 intact, 1 not, 2 error."""
    from .evidence.keys import load_public

    public, keyid = load_public(Path(args.key))
    problems = verify_fleet(Path(args.out), public, keyid)
    data = _read_json(Path(args.out) / FLEET_JSON) or {}
    if not problems and (data.get("signing") or {}).get("development_key"):
        print("note: signed with a throw-away development key: integrity only, not who signed")
    for problem in problems:
        print(f"{Path(args.out) / FLEET_JSON}: {problem}")
    if not problems:
        counts = ", ".join(f"{n} {d}" for d, n in (data.get("counts") or {}).items() if n)
        print(f"{Path(args.out) / FLEET_JSON}: verified ({len(data.get('candidates') or [])} candidates: {counts})")
    return 1 if problems else 0


def _audit_positions(log: Path | None) -> dict[str, int]:
    """run id → seq of its entry in the audit log."""
    positions: dict[str, int] = {}
    if log is None or not log.is_file():
        return positions
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            positions[str(entry["run_id"])] = int(entry["seq"])
        except (ValueError, KeyError, TypeError):
            continue
    return positions


def _audit_unrecorded(log: Path, records: list[dict[str, Any]], out: Path, signer: SigningKey | None) -> None:
    """An audit entry for each candidate whose run has a report but none of its own entry:
    its child died before the evidence step and the supervisor wrote a BLOCK report. The
    log then holds every candidate the fleet decided, not only the ones that got that far."""
    from .evidence import audit

    for record in records:
        if record["audit_seq"] is not None or record["report_sha256"] is None:
            continue
        entry = {
            "run_id": record["run_id"],
            "time": now_rfc3339(),
            "suite": {
                "name": (record.get("suite") or {}).get("name"),
                "sha256": (record.get("suite") or {}).get("sha256"),
            },
            "decision": record["decision"],
            "attestation_sha256": None,
            "report_sha256": record["report_sha256"],
            "out_dir": str(out / record["out"]),
            "signed": False,
            "keyid": None,
            "recorded_by": "fleet",
            "note": "the run ended before its evidence step; the report is its supervisor's",
        }
        try:
            record["audit_seq"] = audit.append(log, entry, signer)["seq"]
        except LlmguardError as exc:
            record["problem"] = f"{record.get('problem') or ''} (no audit entry: {exc})".strip()


def run_fleet(
    argv: Sequence[str],
    args: Any,
    matrix: LoadedMatrix,
    *,
    jobs: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    quiet: bool = False,
) -> int:
    """Run every candidate of ``matrix``; write and sign the summary; return the fleet's exit."""
    if executor not in ("local", "ray"):
        raise FleetError(f"unknown fleet executor {executor!r} (local or ray)")
    signer = _signer(args)
    audit_log = (
        None if getattr(args, "no_audit_log", False) else Path(getattr(args, "audit_log", ".llmguard/audit.jsonl"))
    )
    if audit_log is not None:  # one clear error now rather than the same one from every candidate
        from .evidence.audit import check_appendable_now

        check_appendable_now(audit_log, signer)
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    candidates = matrix.matrix.candidates
    jobs = (
        jobs or getattr(args, "jobs", None) or (len(candidates) if executor == "ray" else default_jobs(len(candidates)))
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    specs = []
    for cand in candidates:
        overrides = matrix.overrides(cand)
        specs.append(
            {
                "name": cand.name,
                "description": cand.description,
                "overrides": overrides,
                "argv": candidate_argv(argv, out / cand.name, overrides),
                "out": str(out / cand.name),
                "out_rel": cand.name,
                "log": str(out / "logs" / f"{cand.name}.log"),
                "log_rel": f"logs/{cand.name}.log",
                "cwd": str(Path.cwd()),
                "env": env,
            }
        )
    started, started_at = time.monotonic(), now_rfc3339()
    total = len(specs)
    finished = [0]

    def done(record: dict[str, Any]) -> None:
        finished[0] += 1
        if not quiet:
            exit_status = "-" if record["exit_status"] is None else record["exit_status"]
            print(f"[{finished[0]}/{total}] {record['name']}: {record['decision']} (exit {exit_status})", flush=True)

    if not quiet:
        print(f"fleet: {total} candidates of {args.suite}, {jobs} at a time ({executor}), into {out}", flush=True)
    interrupted = False
    try:
        records = run_ray(specs, jobs, done, ray_address) if executor == "ray" else run_local(specs, jobs, done)
    except _Interrupted as exc:
        records, interrupted = exc.records, True
    positions = _audit_positions(audit_log)
    for record in records:
        record["audit_seq"] = positions.get(record["run_id"]) if record["run_id"] else None
    if audit_log is not None:
        _audit_unrecorded(audit_log, records, out, signer)
    suite_info = next((r.pop("suite") for r in records if r.get("suite")), None) or {}
    for record in records:
        record.pop("suite", None)
    counts = {d: sum(r["decision"] == d for r in records) for d in ("PROMOTE", "REVIEW", "BLOCK", "ERROR")}
    code = 130 if interrupted else fleet_exit(records)
    summary = {
        "schema": FLEET_SCHEMA,
        "fleet_id": str(uuid.uuid4()),
        "started_at": started_at,
        "finished_at": now_rfc3339(),
        "duration_s": round(time.monotonic() - started, 3),
        "suite": {"path": str(args.suite), "name": suite_info.get("name"), "sha256": suite_info.get("sha256")},
        "matrix": {"file": matrix.file, "sha256": matrix.sha256},
        "executor": executor,
        "jobs": jobs,
        "audit_log": str(audit_log) if audit_log is not None else None,
        "counts": counts,
        "exit_status": code,
        "exit_rule": EXIT_RULE,
        "candidates": records,
    }
    written = write_summary(out, summary, signer)
    if getattr(args, "json", False):
        print((out / FLEET_JSON).read_text(encoding="utf-8"), end="")
    elif not quiet:
        width = max(len(r["name"]) for r in records)
        for r in records:
            why = "; ".join(r["failing_gates"][:2]) or (r.get("problem") or "")
            print(f"  {r['name']:<{width}}  {r['decision']:<7}  {why}".rstrip())
        signed = (
            "unsigned" if signer is None else ("development key" if signer.development else f"keyid {signer.keyid}")
        )
        print(f"fleet: {', '.join(f'{n} {d}' for d, n in counts.items() if n)}; exit {code}")
        print(f"outputs: {', '.join(str(p) for p in written)} ({signed})")
    if interrupted:
        print("interrupted", file=sys.stderr)
    return code


def run_fleet_cli(
    argv: Sequence[str], args: Any, matrix: LoadedMatrix, executor: str | None = None, ray_address: str | None = None
) -> int:
    """``llmguard run ... --matrix`` (``executor``: the ``--executor`` of the run, local by default)."""
    return run_fleet(
        argv,
        args,
        matrix,
        jobs=getattr(args, "jobs", None),
        executor=executor or "local",
        ray_address=ray_address,
        quiet=bool(getattr(args, "quiet", False) or getattr(args, "json", False)),
    )
