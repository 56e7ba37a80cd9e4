"""``llmguard run`` as a supervising parent: the exit status comes from the written report.

The parent runs no suite code. It starts the real run as a child process (the same
interpreter, ``python -m llmguard_ops.cli run ...``) with a fresh run id (a nonce),
forwards the child's stdout and stderr with every secret masked, waits under an overall
deadline, and then reads the run folder:

* exit 0 only when ``report.json`` is complete, carries this run's id, decides PROMOTE,
  the child said it finished normally with 0, and — when signing is configured — the
  attestation verifies, names this run and holds the sha256 of that very report;
* exit 1 or 3 when such a report decides BLOCK or REVIEW;
* any other ending (an exception of any class, ``sys.exit``/``os._exit``, a signal such
  as SIGSEGV, a hang past the deadline, a process kept alive by a thread) becomes a
  BLOCK report written by the parent, whose ERROR result names how and where the run
  ended (exit 1), or exit 2 when no report can be written (the run never got as far as
  validating its suite).

The child tells the parent where it is through small JSON files in a private control
folder: ``plan.json`` (the validated suite, its deadline), ``state.json`` (the check
running now), ``results.jsonl`` (each finished check) and ``done.json`` (its exit code,
written only on a normal end). A child that lingers after ``done.json`` is killed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .redact import Redactor, for_suite_file

CONTROL_ENV = "LLMGUARD_SUPERVISOR"
RUN_ID_ENV = "LLMGUARD_RUN_ID"
LIVE_ENV = "LLMGUARD_LIVE"
TERMINAL_ENV = "LLMGUARD_FORCE_TERMINAL"
LOAD_TIMEOUT_ENV = "LLMGUARD_LOAD_TIMEOUT"
DEFAULT_LOAD_TIMEOUT = 900.0  # before the suite is validated, and again for loading models
REPORTING_MARGIN = 300.0  # reporters, evidence, notifications
LINGER_S = 5.0  # a child still alive this long after done.json is killed
EXIT_BLOCK, EXIT_ERROR, EXIT_INTERRUPTED = 1, 2, 130


# -- the child's side ---------------------------------------------------------------------


class ChildChannel:
    """What a supervised child writes for its parent (a no-op when not supervised)."""

    def __init__(self, folder: str | None, run_id: str | None) -> None:
        self.folder = Path(folder) if folder else None
        self.run_id = run_id

    @classmethod
    def from_environment(cls) -> ChildChannel:
        # taken out of the environment so the models and checks of the run do not see them
        return cls(os.environ.pop(CONTROL_ENV, None), os.environ.pop(RUN_ID_ENV, None))

    def _write(self, name: str, data: Any) -> None:
        if self.folder is None:
            return
        tmp = self.folder / f".{name}.tmp"
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.folder / name)

    def plan(self, loaded: Any, timeout: float | None) -> None:
        suite = loaded.suite
        checks = sum(c.timeout or suite.policy.default_timeout for c in suite.checks)
        self._write(
            "plan.json",
            {
                "budget_s": timeout if timeout is not None else _load_timeout() + checks + REPORTING_MARGIN,
                "suite": {
                    "name": suite.name,
                    "path": str(loaded.path),
                    "sha256": loaded.sha256,
                    "api_version": suite.apiVersion,
                    "seed": suite.seed,
                },
                "checks": {c.id: {"uses": c.uses, "severity": c.severity.value} for c in suite.checks},
            },
        )

    def progress(self, event: str, data: dict[str, Any]) -> None:
        if self.folder is None:
            return
        if event == "check_start":
            self._write("state.json", {"phase": "check", "check": data.get("id")})
        elif event == "check_end":
            with open(self.folder / "results.jsonl", "a", encoding="utf-8") as fh:
                fh.write(data["result"].model_dump_json() + "\n")
            self._write("state.json", {"phase": "between checks"})
        elif event == "loaded":
            self._write("state.json", {"phase": "loaded"})

    def phase(self, phase: str) -> None:
        self._write("state.json", {"phase": phase})

    def done(self, code: int) -> None:
        self._write("done.json", {"exit": code})


def _load_timeout() -> float:
    try:
        return float(os.environ.get(LOAD_TIMEOUT_ENV, DEFAULT_LOAD_TIMEOUT))
    except ValueError:
        return DEFAULT_LOAD_TIMEOUT


class RedactingStream:
    """A text stream that masks secrets before writing (the child's stdout and stderr)."""

    def __init__(self, stream: IO[str], redactor: Redactor) -> None:
        self._stream = stream
        self._redactor = redactor

    def write(self, text: str) -> int:
        self._stream.write(self._redactor.text(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# -- the parent's side --------------------------------------------------------------------


def _forward(source: IO[bytes], sink: IO[str], redactor: Redactor) -> None:
    """Copy ``source`` to ``sink`` with secrets masked, at line ends (a secret split across
    two reads is still masked), flushing a partial line after a quiet moment. The pipe is
    closed at its end (this thread is its only reader)."""
    with source:
        _pump(source.fileno(), sink, redactor)


def _pump(fd: int, sink: IO[str], redactor: Redactor) -> None:
    pending = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            cut = max(pending.rfind(b"\n"), pending.rfind(b"\r"))
            if cut < 0 and len(pending) < 65536:
                continue
            head, pending = (pending[: cut + 1], pending[cut + 1 :]) if cut >= 0 else (pending, b"")
        elif pending:
            head, pending = pending, b""
        else:
            continue
        _emit(sink, redactor, head)
    if pending:
        _emit(sink, redactor, pending)


def _emit(sink: IO[str], redactor: Redactor, data: bytes) -> None:
    try:
        sink.write(redactor.text(data.decode("utf-8", errors="replace")))
        sink.flush()
    except (OSError, ValueError):
        pass  # our own output closed: keep draining the child


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _signal_name(code: int) -> str:
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


class Supervisor:
    """One supervised ``llmguard run``."""

    def __init__(
        self,
        argv: Sequence[str],
        args: Any,
        *,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``stdout``/``stderr``: where the child's output and the verdict go (default
        the process's); ``cwd`` and ``env``: the child's folder and base environment
        (default this process's) — a fleet runs many of these at once, each to its log."""
        self.argv = list(argv)
        self.args = args
        self._stdout, self._stderr = stdout, stderr
        self.cwd = cwd
        self.base_env = env
        self.out_dir = Path(args.out)
        self.run_id = str(uuid.uuid4())
        self.control = Path(tempfile.mkdtemp(prefix="llmguard-run-"))
        self.redactor = for_suite_file(args.suite)
        self.started = time.monotonic()
        self.started_at = _now()

    # the child -----------------------------------------------------------------------

    def _env(self, live: bool) -> dict[str, str]:
        env = dict(os.environ if self.base_env is None else self.base_env)
        env[CONTROL_ENV] = str(self.control)
        env[RUN_ID_ENV] = self.run_id
        # the same import path as this process (plugins given with -p, editable installs)
        paths = [p for p in sys.path if p and Path(p).is_dir()]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env["PYTHONUNBUFFERED"] = "1"
        if live:
            env[LIVE_ENV] = "1"
            if sys.stdout.isatty():
                env[TERMINAL_ENV] = "1"
                size = shutil.get_terminal_size()
                env.setdefault("COLUMNS", str(size.columns))
                env.setdefault("LINES", str(size.lines))
        return env

    @property
    def out(self) -> IO[str]:
        return self._stdout or sys.stdout

    @property
    def err(self) -> IO[str]:
        return self._stderr or sys.stderr

    def run(self, live: bool) -> int:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "llmguard_ops.cli", *self.argv],
                env=self._env(live),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            print(f"error: cannot start the run: {exc}", file=self.err)
            return EXIT_ERROR
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_forward, args=(proc.stdout, self.out, self.redactor), daemon=True),
            threading.Thread(target=_forward, args=(proc.stderr, self.err, self.redactor), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        try:
            ending = self._wait(proc)
        except KeyboardInterrupt:
            self._stop(proc)
            ending = "interrupted (Ctrl-C)"
        for pump in pumps:
            pump.join(timeout=5)
        try:
            return self._conclude(proc, ending)
        finally:
            shutil.rmtree(self.control, ignore_errors=True)

    def _budget(self) -> float:
        plan = _read_json(self.control / "plan.json")
        if self.args.timeout is not None:
            return float(self.args.timeout)
        if isinstance(plan, dict) and isinstance(plan.get("budget_s"), int | float):
            return float(plan["budget_s"]) + _load_timeout()  # time spent validating, too
        return _load_timeout()

    def _wait(self, proc: subprocess.Popen[bytes]) -> str | None:
        """None for a normal end, else how the run ended abnormally (before exit codes)."""
        done_at: float | None = None
        while True:
            try:
                proc.wait(timeout=0.1)
                return None
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if done_at is None and (self.control / "done.json").exists():
                done_at = now
            if done_at is not None and now - done_at > LINGER_S:
                self._stop(proc)  # its report is written; a thread kept it alive
                return None
            if now - self.started > self._budget():
                self._stop(proc)
                return f"the run did not finish within its deadline of {self._budget():g}s"

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    # the verdict ------------------------------------------------------------------------

    def _conclude(self, proc: subprocess.Popen[bytes], ending: str | None) -> int:
        done = _read_json(self.control / "done.json")
        said = done.get("exit") if isinstance(done, dict) else None
        code = proc.returncode
        if ending is None:
            if said is None:
                how = _signal_name(code) if code is not None and code < 0 else f"exit status {code}"
                ending = f"the run ended abnormally ({how}) before finishing its report"
            elif said != code and code != -signal.SIGTERM and code != -signal.SIGKILL:
                ending = f"the run reported exit {said} but its process ended with {code}"
        if ending is None:
            verdict, problem = self._from_report()
            if problem is None and verdict is not None and verdict == said:
                return verdict
            if problem is None and said == EXIT_ERROR and verdict is None:
                return EXIT_ERROR  # a suite or input error, already printed by the run
            ending = problem or f"the run's exit {said} disagrees with its report ({verdict})"
        return self._abort(ending)

    def _from_report(self) -> tuple[int | None, str | None]:
        """The exit status report.json supports, or (None, None) without this run's report."""
        from .report import read_report

        path = self.out_dir / "report.json"
        data = _read_json(path)
        if not isinstance(data, dict) or data.get("run_id") != self.run_id:
            return None, None
        try:
            report = read_report(path)
        except Exception as exc:  # an incomplete report is a verdict, not a crash
            return None, f"report.json is incomplete: {type(exc).__name__}"
        code = report.decision.decision.exit_code
        if code == 0 and self._signing_configured():
            problem = self._attestation_problem(path)
            if problem is not None:
                return None, problem
        return code, None

    def _signing_configured(self) -> bool:
        return bool(self.args.key or self.args.dev_key or os.environ.get("LLMGUARD_SIGNING_KEY", "").strip())

    def _attestation_problem(self, report_path: Path) -> str | None:
        from .evidence.keys import key_from_environment, load_private, load_public
        from .evidence.verify import verify_attestation

        attestation = self.out_dir / "attestation.dsse.json"
        try:
            if self.args.dev_key:
                public, keyid = load_public(self.out_dir / "development-key.pub")
            else:
                signer = load_private(Path(self.args.key)) if self.args.key else key_from_environment()
                if signer is None:
                    return "signing is configured but no key could be read"
                public, keyid = signer.public, signer.keyid
            verified = verify_attestation(attestation.read_bytes(), public, keyid)
        except Exception as exc:  # any failure to verify is a failure
            return f"the attestation does not verify: {type(exc).__name__}: {exc}"
        predicate = verified.predicate
        from .artifacts import sha256_file

        digest = sha256_file(report_path)
        if predicate.get("run_id") != self.run_id:
            return "the attestation is not this run's"
        if (predicate.get("decision") or {}).get("decision") != "PROMOTE":
            return "the attestation does not attest a PROMOTE"
        if (predicate.get("outputs") or {}).get("report.json") != digest:
            return "the attestation does not hold the sha256 of report.json"
        return None

    def _abort(self, ending: str) -> int:
        """Write a BLOCK report whose ERROR result says how the run ended; exit 1 (2 if none)."""
        from .report import Report, SuiteInfo, write_report
        from .results import CheckResult, Decision, ErrorInfo, GateDecision, Severity, Status

        ending = self.redactor.text(ending)
        plan = _read_json(self.control / "plan.json")
        if not isinstance(plan, dict):
            print(f"error: {ending}; no report was written (the suite was never validated)", file=self.err)
            return EXIT_ERROR
        state = _read_json(self.control / "state.json") or {}
        results: list[CheckResult] = []
        for line in _lines(self.control / "results.jsonl"):
            try:
                results.append(CheckResult.model_validate_json(line))
            except ValueError:
                continue
        where = state.get("check") if state.get("phase") == "check" else None
        info = (plan.get("checks") or {}).get(where, {}) if where else {}
        message = f"{ending} (while {'running check ' + repr(where) if where else state.get('phase', 'loading')})"
        results = [r for r in results if r.id != where]
        results.append(
            CheckResult(
                id=where or "run",
                uses=info.get("uses", "llmguard.run"),
                plugin="llmguard-ops",
                severity=Severity.BLOCKER,
                status=Status.ERROR,
                error=ErrorInfo(type="RunAborted", message=message),
            )
        )
        reasons = [f"{where or 'run'}: ERROR: {message}"]
        try:
            report = Report(
                run_id=self.run_id,
                started_at=self.started_at,
                finished_at=_now(),
                duration_s=round(time.monotonic() - self.started, 6),
                suite=SuiteInfo(**plan["suite"]),
                checks=results,
                decision=GateDecision.of(Decision.BLOCK, reasons),
            )
            path = write_report(report, self.out_dir)
        except Exception as exc:  # nothing written: exit 2
            print(f"error: {ending}; the report could not be written: {exc}", file=self.err)
            return EXIT_ERROR
        print(f"BLOCK: {message}\nreport: {path} (written by the supervising process, unsigned)", file=self.err)
        return EXIT_BLOCK


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError:
        return []


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def supervise(argv: Sequence[str], args: Any, live: bool) -> int:
    """Run ``llmguard ARGV`` (a ``run`` command) in a supervised child; see the module doc."""
    return Supervisor(argv, args).run(live)
