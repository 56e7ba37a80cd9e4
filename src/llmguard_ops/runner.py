"""Running a validated suite: artifacts once, checks isolated, gate, outputs.

Each check runs in a worker thread under its timeout. An exception, a timeout, a
malformed output or a non-finite metric becomes an ERROR result with the reason (and
the traceback, for exceptions); the run always goes on to the next check. A check that
hangs keeps its (daemon) thread but no longer holds up the run.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from . import environment
from .artifacts import LoadedDataset, LoadedModel, load_datasets, load_models
from .context import CheckContext, PredictionCache, derive_seed
from .gate import decide, evaluate_gates, status_of
from .isolation import RemoteError
from .loading import LoadedSuite
from .outputs import validated
from .plugins import PluginHost
from .redact import Redactor, for_text
from .report import Report, SuiteInfo, now_rfc3339
from .results import CheckOutput, CheckResult, Decision, ErrorInfo, GateDecision, GateOutcome, Status
from .suite import CheckConfig

if TYPE_CHECKING:
    from .evidence.options import EvidenceOptions
    from .evidence.record import EvidenceRecord
    from .evidence.waivers import WaiverBook

log = logging.getLogger("llmguard")

ProgressFn = Callable[[str, dict[str, Any]], None]


class CheckTimeout(Exception):
    """A check ran past its timeout."""


class CheckRaised(Exception):
    """Carries whatever a check raised in its worker thread, of any class.

    ``SystemExit``, ``KeyboardInterrupt`` and other ``BaseException`` subclasses raised
    by check (or model) code are results like any exception: an ERROR, never the end of
    the run.
    """

    def __init__(self, error: BaseException, formatted: str) -> None:
        super().__init__(error)
        self.error = error
        self.formatted = formatted


def _call_with_timeout(fn: Callable[[], Any], timeout: float, name: str) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc
            box["traceback"] = traceback.format_exc()

    worker = threading.Thread(target=target, name=f"llmguard:{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise CheckTimeout(
            f"timed out after {timeout:g}s (the check is abandoned; raise 'timeout:' if it needs longer)"
        )
    if "error" in box:
        raise CheckRaised(box["error"], box["traceback"])
    return box.get("value")


def _call_isolated(fn: Callable[[], Any], timeout: float, run: Any) -> Any:
    """``fn()`` in a forked child (``policy.isolation: process``); see :mod:`.isolation`."""
    from .isolation import ChildEnded, call_in_child

    try:
        return call_in_child(fn, timeout, lambda exc: _skipped_by_check(exc, run))
    except RemoteError as exc:
        raise CheckRaised(exc, exc.formatted) from None
    except ChildEnded as exc:
        raise CheckRaised(exc, "") from None


def _text_of(exc: BaseException) -> str:
    """``str(exc)``, even when the exception's ``__str__`` itself raises or returns junk."""
    try:
        text = str(exc)
    except BaseException:  # a hostile __str__ must not end the run
        text = ""
    if not isinstance(text, str):
        text = ""
    return text[:20_000] or type(exc).__name__


def _skipped_by_check(exc: BaseException, run: Any) -> bool:
    """Whether ``exc`` (a CheckSkipped) was raised by the check's own package.

    Only a check may skip: a model, a loader or a library raising ``CheckSkipped`` from
    inside a check (e.g. in ``predict``) must not turn a blocker into a skip. The
    innermost frame of the traceback must be in the package of the check's function.
    """
    owner = getattr(run, "__module__", None)
    tb = exc.__traceback__
    if not isinstance(owner, str) or tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    where = tb.tb_frame.f_globals.get("__name__")
    return isinstance(where, str) and where.split(".")[0] == owner.split(".")[0]


@dataclass
class Session:
    """A suite with its artifacts loaded, ready to run checks (one per run)."""

    loaded: LoadedSuite
    host: PluginHost
    models: dict[str, LoadedModel]
    datasets: dict[str, LoadedDataset]
    out_dir: Path
    cache: PredictionCache = field(default_factory=PredictionCache)
    started_at: str = field(default_factory=now_rfc3339)
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    t0: float = field(default_factory=time.perf_counter)
    waivers: WaiverBook | None = None
    redactor: Redactor = field(default_factory=Redactor)
    executor_info: dict[str, Any] | None = None  # what the executor of run_checks describes
    facts: dict[str, Any] | None = None
    """The machine's facts (:func:`.environment.collect`), collected once per session."""

    @classmethod
    def open(
        cls,
        loaded: LoadedSuite,
        host: PluginHost,
        out_dir: Path,
        waivers: WaiverBook | None = None,
        run_id: str | None = None,
    ) -> Session:
        registry = host.registry()
        datasets = load_datasets(loaded, registry)
        models = load_models(loaded, registry)
        session = cls(
            loaded=loaded,
            host=host,
            models=models,
            datasets=datasets,
            out_dir=out_dir,
            waivers=waivers,
            redactor=for_text(loaded.text),
        )
        if run_id is not None:
            session.run_id = run_id
        return session

    def context(self, config: CheckConfig) -> CheckContext:
        """What one check sees: copies of the suite and of its own configuration.

        The runner gates with its own objects, so a check that edits ``ctx.check.gate``
        or ``ctx.suite`` changes nothing but its copy.
        """
        artifact_dir = self.out_dir / "artifacts" / config.id
        suite = copy.deepcopy(self.loaded)
        return CheckContext(
            suite=suite,
            check=config.model_copy(deep=True),
            models=dict(self.models),
            datasets=dict(self.datasets),
            cache=self.cache,
            artifact_dir=artifact_dir,
            seed=derive_seed(self.loaded.suite.seed, config.id),
            default_confidence=self.loaded.suite.policy.confidence,
            registry=self.host.registry(),
        )

    def run_check(self, config: CheckConfig, params: BaseModel | None = None) -> CheckResult:
        """Run one check in isolation and gate its metrics; never raises for check faults.

        ``params`` (validated) runs a check that is not in the suite file, e.g. one a
        Python test builds inline; by default the suite's own validated ``with:`` is used.
        """
        registry = self.host.registry()
        definition = registry.checks[config.uses]
        raw = dict(config.with_) if params is not None else self.loaded.raw_params(config.id)
        params = self.loaded.params[config.id] if params is None else params
        config = config.model_copy(deep=True)  # the host's own copy gates, whatever the check does
        ctx = self.context(config)
        params = params.model_copy(deep=True)
        timeout = config.timeout or self.loaded.suite.policy.default_timeout
        base = self.result_fields(config, raw, ctx.seed)
        start = time.perf_counter()

        def call() -> Any:
            ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
            return self.host.hook.llmguard_run_check(context=ctx, check=definition, params=params)

        error: ErrorInfo | None = None
        output: CheckOutput | None = None
        status: Status | None = None
        problems: list[str] = []
        policy = self.loaded.suite.policy
        try:
            if policy.isolation == "process":
                value = _call_isolated(call, timeout, definition.run)
            else:
                value = _call_with_timeout(call, timeout, config.id)
            output, problems = validated(value, config.uses)
        except CheckTimeout as exc:
            error = ErrorInfo(type="Timeout", message=str(exc))
        except CheckRaised as raised:
            from .errors import CheckSkipped

            thrown = raised.error
            remote = thrown if isinstance(thrown, RemoteError) else None
            skip = remote.skip if remote else isinstance(thrown, CheckSkipped)
            skip_ok = remote.skip_ok if remote else skip and _skipped_by_check(thrown, definition.run)
            kind = remote.type_name if remote else type(thrown).__name__
            if skip and skip_ok and _text_of(thrown):
                status = Status.SKIP
                error = ErrorInfo(type="Skipped", message=_text_of(thrown))
            elif skip:
                error = ErrorInfo(
                    type="InvalidSkip",
                    traceback=raised.formatted,
                    message=f"CheckSkipped raised outside check '{config.uses}' (e.g. by a model): "
                    f"only a check may skip; {_text_of(thrown)}",
                )
            else:
                error = ErrorInfo(type=kind, message=_text_of(thrown), traceback=raised.formatted)
        except Exception as exc:  # a fault of the host's own validation: still a result
            error = ErrorInfo(type=type(exc).__name__, message=_text_of(exc), traceback=traceback.format_exc())
        duration = time.perf_counter() - start

        gates: list[GateOutcome] = []
        if output is not None:
            evaluation = evaluate_gates(config.gate, output.metrics)
            problems.extend(evaluation.problems)
            if problems:
                error = ErrorInfo(type="InvalidResult", message="; ".join(problems))
            else:
                gates = list(evaluation.outcomes)
        elif problems:
            error = ErrorInfo(type="InvalidResult", message="; ".join(problems))
        if status is None:
            status = Status.ERROR if error is not None else status_of(config.severity, gates)
        result = CheckResult(
            **base,
            status=status,
            gates=gates,
            error=error,
            duration_s=round(duration, 6),
            metrics=output.metrics if output else {},
            details=output.details if output else {},
            warnings=[*(output.warnings if output else []), *ctx.notes],
            artifacts={k: self._relative(v) for k, v in (output.artifacts if output else {}).items()},
        )
        if self.redactor:  # secrets in an error message, a traceback or details go no further
            result = CheckResult.model_validate(self.redactor.data(result.model_dump(mode="json")))
        self._apply_waiver(result)
        return result

    def result_fields(self, config: CheckConfig, raw: dict[str, Any], seed: int) -> dict[str, Any]:
        """The provenance every result of ``config`` carries, whoever ran it (an executor too)."""
        definition = self.host.registry().checks[config.uses]
        return dict(
            id=config.id,
            uses=config.uses,
            plugin=definition.plugin,
            plugin_version=definition.plugin_version,
            severity=config.severity,
            allow_error=config.allow_error,
            params=raw,
            seed=seed,
        )

    def _relative(self, path: str | Path) -> str:
        """Artifact paths relative to the output folder, so a moved folder stays valid."""
        p = Path(path)
        try:
            return p.resolve().relative_to(self.out_dir.resolve()).as_posix()
        except ValueError:
            return str(p)

    def _apply_waiver(self, result: CheckResult) -> None:
        if self.waivers is None:
            from .evidence.waivers import WaiverBook, suite_entries

            self.waivers = WaiverBook(suite_entries(self.loaded))
        self.waivers.apply(result)

    def environment(self) -> dict[str, Any]:
        """The environment facts of the run: collected (git asked) once, then reused."""
        if self.facts is None:
            packages = (*environment.REPORTED_PACKAGES, *self.host.registry().packages())
            self.facts = environment.collect(self.loaded.base_dir, tuple(dict.fromkeys(packages)))
        return copy.deepcopy(self.facts)

    def report(self, results: list[CheckResult], decision: GateDecision) -> Report:
        """The run's report over ``results`` (the environment facts are the session's)."""
        suite = self.loaded.suite
        raw = self.loaded.raw
        registry = self.host.registry()
        return Report(
            run_id=self.run_id,
            started_at=self.started_at,
            finished_at=now_rfc3339(),
            duration_s=round(time.perf_counter() - self.t0, 6),
            suite=SuiteInfo(
                name=suite.name,
                path=str(self.loaded.path),
                sha256=self.loaded.sha256,
                api_version=suite.apiVersion,
                seed=suite.seed,
                # as written: ${ENV} references stay unresolved so no secret leaks
                description=_as_written(raw.get("description"), suite.description),
                metadata=_as_written(raw.get("metadata"), suite.metadata),
                overrides=self.loaded.overrides,
            ),
            decision=decision,
            checks=results,
            models={n: m.describe() for n, m in self.models.items()},
            datasets={n: d.describe() for n, d in self.datasets.items()},
            environment=self.environment(),
            plugins=dict(registry.plugins),
            plugin_failures=[f.line() for f in registry.failures],
            prediction_calls=self.cache.stats(),
            waivers=list(self.waivers.used) if self.waivers else [],
            executor=self.executor_info,
        )


def _as_written(raw: Any, validated: Any) -> Any:
    """The raw (un-interpolated) value when it has the validated value's type."""
    return raw if isinstance(raw, type(validated)) else validated


def decide_with_vetoes(session: Session, results: list[CheckResult], signed: bool = False) -> GateDecision:
    """The gate's decision, then every plugin's veto (which can only add BLOCK reasons).

    ``signed``: whether the run is signed with a trusted key (``policy.require_signature``).
    The draft report is built once; each plugin is called through pluggy on its own
    (:meth:`~llmguard_ops.plugins.PluginHost.call_each`) with its own deep copy of it.
    """
    policy = session.loaded.suite.policy
    vetoes: list[str] = []
    draft = session.report(results, decide(policy, results, signed=signed))
    # each plugin gets its own deep copy: what it changes in it is thrown away
    for call in session.host.call_each("llmguard_gate_veto", lambda: {"report": draft.model_copy(deep=True)}):
        reasons = call.result
        if call.error is not None:  # fail closed: a broken veto blocks
            vetoes.append(
                f"plugin '{call.plugin}' failed in llmguard_gate_veto: {type(call.error).__name__}: "
                f"{_text_of(call.error)}"
            )
        elif reasons is None:
            continue
        elif not isinstance(reasons, list | tuple) or not all(isinstance(r, str) for r in reasons):
            vetoes.append(
                f"plugin '{call.plugin}' returned {type(reasons).__name__} from "
                "llmguard_gate_veto, not a list of reasons"
            )
        else:
            vetoes.extend(session.redactor.text(r) for r in reasons)
    # recomputed by the host from its own results, whatever a plugin did to its copy
    return decide(policy, results, vetoes, signed=signed)


def run_checks(
    session: Session,
    only: Iterable[str] | None = None,
    progress: ProgressFn | None = None,
    *,
    executor: str | None = None,
    executor_options: Mapping[str, Any] | None = None,
) -> list[CheckResult]:
    """Every wanted check's result, in suite order, from the run's executor.

    ``executor`` (default: the suite's ``policy.executor``) names a registered executor;
    ``executor_options`` are handed to its ``open`` (``{"address": ...}`` for ``ray``).
    """
    from .executors import open_executor

    wanted = set(only) if only is not None else None
    configs = [c for c in session.loaded.suite.checks if wanted is None or c.id in wanted]
    options = dict(executor_options or {})
    actors = options.pop("inference_actors", None)
    actors = session.loaded.suite.policy.inference_actors if actors is None else int(actors)
    engine = open_executor(session, executor, options)
    try:
        info = engine.describe()
        if actors > 0:  # after the executor joined its cluster: the actor pool is started on it
            from .executors.ray_data import RayInference

            session.cache.backend = RayInference(actors=actors, address=options.get("address"))
            info = {**info, "inference": {"backend": "ray_data", "actors": actors}}
        session.executor_info = info
        return engine.run(session, configs, progress)
    finally:
        engine.close()


def notify_decision(session: Session, report: Report, out_dir: Path) -> list[str]:
    """Decision hooks, incident hooks on BLOCK/REVIEW, then the suite's webhooks.

    Each plugin is called on its own through pluggy (with its own deep copy of the
    report) so that one failing cannot stop the others; every failure becomes a warning
    and none changes the decision.
    """
    from .notify import decision_payload, post_json

    problems = []
    hooks = ["llmguard_on_decision"]
    if report.decision.outcome is not Decision.PROMOTE:
        hooks.append("llmguard_on_incident")
    for name in hooks:
        for call in session.host.call_each(name, lambda: {"report": report.model_copy(deep=True), "out_dir": out_dir}):
            if call.error is not None:
                problems.append(f"plugin '{call.plugin}' failed in {name}: {type(call.error).__name__}: {call.error}")
    for i, target in enumerate(session.loaded.suite.notify):
        if report.decision.outcome.value not in target.when:
            continue
        try:
            body = decision_payload(report, target, out_dir, session.loaded.suite.policy.approvals)
            post_json(target.webhook, body, headers=target.headers, timeout=target.timeout, retries=target.retries)
        except RuntimeError as exc:
            problems.append(f"notify[{i}]: {exc}")
    return problems


@dataclass
class RunOutcome:
    report: Report
    out_dir: Path
    written: list[Path]
    warnings: list[str]
    evidence: EvidenceRecord | None = None


def run_suite(
    loaded: LoadedSuite,
    host: PluginHost,
    out_dir: Path,
    *,
    only: Iterable[str] | None = None,
    progress: ProgressFn | None = None,
    write: bool = True,
    evidence: EvidenceOptions | None = None,
    run_id: str | None = None,
    executor: str | None = None,
    executor_options: Mapping[str, Any] | None = None,
) -> RunOutcome:
    """Run a validated suite end to end and write its outputs into ``out_dir``.

    ``evidence`` (see :func:`llmguard_ops.evidence.options.prepare`) says how to sign
    the attestation, which audit log gets the entry, and which waivers apply; by
    default the run is unsigned, appends to no log and uses the suite's waivers.
    """
    from .evidence.options import EvidenceOptions
    from .evidence.waivers import WaiverBook, suite_entries

    out_dir = Path(out_dir)
    evidence = evidence or EvidenceOptions()
    entries = evidence.waivers if evidence.waivers is not None else suite_entries(loaded)
    book = WaiverBook(entries) if evidence.today is None else WaiverBook(entries, evidence.today)
    session = Session.open(loaded, host, out_dir, waivers=book, run_id=run_id)
    if progress:
        progress("loaded", {"models": list(session.models), "datasets": list(session.datasets)})
    results = run_checks(session, only, progress, executor=executor, executor_options=executor_options)
    return finish_run(session, results, out_dir, write=write, evidence=evidence)


def finish_run(
    session: Session,
    results: list[CheckResult],
    out_dir: Path,
    *,
    write: bool = True,
    evidence: EvidenceOptions | None = None,
) -> RunOutcome:
    """Decide over ``results``, write the report, every reporter's output and the evidence.

    Shared by :func:`run_suite` and the pytest plugin (which runs checks one item at a
    time), so both shells produce the same decision, the same files and the same signed
    attestation and audit-log entry.
    """
    from .evidence.options import EvidenceOptions
    from .evidence.record import clear_previous, record

    evidence = evidence or EvidenceOptions()
    signed = evidence.trusted and write  # nothing is signed when nothing is written
    decision = decide_with_vetoes(session, results, signed=signed)
    report = session.report(results, decision)
    report.signed = signed
    report.signing = evidence.signing_info()
    if session.redactor:  # one pass over everything every output, hook and attestation sees
        report = Report.model_validate(session.redactor.data(report.to_json_dict()))
    written: list[Path] = []
    book_warnings = session.waivers.warnings if session.waivers is not None else []
    warnings: list[str] = [*evidence.warnings, *book_warnings]
    evidence_record = None
    if write:
        from .plugins import BUILTIN_PLUGINS
        from .publish import HOST, output_file, publish

        clear_previous(out_dir)  # a run killed from here on leaves no stale attestation
        published = publish(report, out_dir, session.host.registry(), BUILTIN_PLUGINS)
        written, outputs = published.written, published.outputs
        warnings += published.warnings
        # the attestation's report body is report.json as written; its outputs are the predicate's
        known = {name: entry.sha256 for name, entry in outputs.items()}
        evidence_record = record(report, session.loaded, out_dir, written, evidence, known)
        for path in [*evidence_record.files, evidence_record.attestation]:
            entry = output_file(path, out_dir, "evidence", HOST)
            outputs[entry.path] = entry
        written.append(evidence_record.attestation)
        report.outputs = outputs
    warnings.extend(notify_decision(session, report, out_dir))
    return RunOutcome(report=report, out_dir=out_dir, written=written, warnings=warnings, evidence=evidence_record)


def run(
    suite: str | Path,
    out_dir: str | Path = "llmguard-out",
    *,
    overrides: Iterable[str] = (),
    plugins: Iterable[str] = (),
    objects: Iterable[tuple[str, Any]] = (),
    entry_points: bool = True,
    only: Iterable[str] | None = None,
    write: bool = True,
    key: str | Path | None = None,
    dev_key: bool = False,
    lock: str | Path | None = None,
    lock_key: str | Path | None = None,
    waivers: Iterable[str | Path] = (),
    audit_log: str | Path | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
    inference_actors: int | None = None,
) -> RunOutcome:
    """Library entry point: load plugins, validate ``suite`` and run it.

    ``key`` (a private key file; else ``LLMGUARD_SIGNING_KEY``) signs the attestation,
    ``dev_key`` signs with a throw-away key instead, ``lock``/``lock_key`` hold the run
    to a signed suite lock, ``waivers`` adds waiver files, and ``audit_log`` (none by
    default in the library; the CLI uses ``.llmguard/audit.jsonl``) gets the run's entry.
    ``executor`` (default: the suite's ``policy.executor``) says where checks run and
    ``ray_address`` which Ray cluster the ``ray`` executor joins (default: a local one),
    ``inference_actors`` how many Ray actors compute the run's model calls (default: the
    suite's ``policy.inference_actors``; 0: none, each check's process calls the model).

    Raises :class:`~llmguard_ops.SuiteError` for problems in the suite or its inputs;
    check faults never raise, they become ERROR results.
    """
    from .evidence.options import prepare
    from .loading import load_suite
    from .plugins import get_plugin_manager

    host = get_plugin_manager(entry_points=entry_points, plugins=plugins, objects=objects)
    loaded = load_suite(suite, host.registry(), overrides=list(overrides))
    evidence = prepare(
        loaded,
        key=key,
        dev_key=dev_key,
        lock=lock,
        lock_key=lock_key,
        waivers=waivers,
        audit_log=audit_log,
        registry=host.registry(),
    )
    options: dict[str, Any] = {"address": ray_address} if ray_address else {}
    if inference_actors is not None:
        options["inference_actors"] = inference_actors
    return run_suite(
        loaded,
        host,
        Path(out_dir),
        only=only,
        write=write,
        evidence=evidence,
        executor=executor,
        executor_options=options,
    )
