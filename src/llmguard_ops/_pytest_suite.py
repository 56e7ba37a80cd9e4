"""The pytest plugin's working half: suites as collectors, checks as items, fixtures.

Imported by :mod:`llmguard_ops.pytest_plugin` only once llmguard is switched on in a
pytest run. One :class:`SuiteSession` per (suite file, overrides) and test process
holds the loaded artifacts and the prediction cache, shared by the suite's items and
the fixtures. The decision at the end goes through :func:`llmguard_ops.runner.finish_run`,
exactly as ``llmguard run`` does.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from ._pytest_shared import SUPERVISED_ENV, LlmguardGateWarning
from .errors import LlmguardError, did_you_mean
from .gate import evaluate_gates
from .loading import LoadedSuite, load_suite, validate_check
from .options import OUT, PLUGIN, SET, pytest_value
from .plugins import PluginHost, get_plugin_manager, parse_plugin_options
from .reporters._format import failure_reasons, metric_properties
from .results import CheckResult, Decision, GateDecision, Status
from .runner import Session, finish_run
from .suite import CheckConfig

_SESSIONS = pytest.StashKey[dict[tuple[Path, tuple[str, ...]], "SuiteSession"]]()
_COLLECTED = pytest.StashKey[set[Path]]()


class SuiteSession:
    """A suite loaded for a pytest run: validated once, artifacts loaded on first use."""

    def __init__(self, path: Path, overrides: list[str], plugins: list[str], out_root: Path) -> None:
        load, block = parse_plugin_options(plugins)
        self.path = path
        self.overrides = overrides
        self.out_root = out_root
        self.host: PluginHost = get_plugin_manager(plugins=load, blocked=block)
        self.loaded: LoadedSuite = load_suite(path, self.host.registry(), overrides=overrides)
        self.out_dir = out_root
        self._session: Session | None = None
        self._error: LlmguardError | None = None

    @property
    def name(self) -> str:
        return self.loaded.suite.name

    @property
    def session(self) -> Session:
        """The runner session (models and datasets loaded and digested once per process)."""
        if self._error is not None:
            raise self._error
        if self._session is None:
            try:
                self._session = Session.open(self.loaded, self.host, self.out_dir)
            except LlmguardError as exc:
                self._error = exc
                raise
        return self._session

    def model(self, name: str) -> Any:
        """The live model object named ``name`` in the suite."""
        return self.session.models[name].obj

    def dataset(self, name: str) -> Any:
        """The loaded dataset ``name`` (``.frame`` is a pandas DataFrame, ``.y()`` the target)."""
        return self.session.datasets[name]

    def run(self, check_id: str) -> CheckResult:
        """Run the suite's own check ``check_id`` as written in the file."""
        return self.session.run_check(self.loaded.suite.check(check_id))

    def check(
        self,
        name: str,
        *,
        gate: Mapping[str, Any] | None = None,
        severity: str | None = None,
        id: str | None = None,
        **params: Any,
    ) -> CheckResult:
        """Run a check with parameters and return its :class:`CheckResult`.

        ``name`` is a check id of the suite (its ``with:``, gate and severity, updated by
        the arguments) or an installed check name (run with ``params`` only). The entry is
        validated by the suite loader itself (:func:`~llmguard_ops.loading.validate_check`):
        the same checks and the same located, one-line errors as a suite file.
        """
        suite = self.loaded.suite
        registry = self.host.registry()
        base = next((c for c in suite.checks if c.id == name), None)
        if base is not None:
            uses, with_ = base.uses, {**base.with_, **params}
            gates = gate if gate is not None else {k: v.model_dump(exclude_none=True) for k, v in base.gate.items()}
            severity = severity or base.severity.value
        elif name in registry.checks:
            uses, with_, gates = name, dict(params), dict(gate or {})
        else:
            hint = did_you_mean(name, [*registry.checks, *(c.id for c in suite.checks)])
            raise LlmguardError(
                f"llmguard_check('{name}'): neither a check id of suite '{suite.name}' nor an installed check{hint}"
            )
        entry = {"id": id or name, "uses": uses, "with": with_, "gate": gates, "severity": severity or "blocker"}
        config, validated = validate_check(entry, registry, suite, where=f"llmguard_check('{name}')")
        return self.session.run_check(config, params=validated)

    def payload(self) -> dict[str, Any]:
        """What identifies this suite in a report sent from an xdist worker."""
        return {
            "suite": str(self.path),
            "overrides": list(self.overrides),
            "out_dir": str(self.out_dir),
        }


def suite_session(config: pytest.Config, path: Path, overrides: list[str] | None = None) -> SuiteSession:
    """The process-wide :class:`SuiteSession` of ``path`` (created on first use)."""
    sessions = config.stash.setdefault(_SESSIONS, {})
    overrides = list(pytest_value(config, SET)) if overrides is None else overrides
    key = (Path(path).resolve(), tuple(overrides))
    if key not in sessions:
        out = Path(pytest_value(config, OUT))
        # like the CLI, relative to where pytest was started; an ini value to the rootdir
        from_ini = not config.getoption(OUT.pytest_dest) and bool(config.getini(OUT.pytest_dest))
        base = config.rootpath if from_ini else config.invocation_params.dir
        sessions[key] = SuiteSession(key[0], overrides, list(pytest_value(config, PLUGIN)), base / out)
    return sessions[key]


def suite_path_for(request: pytest.FixtureRequest) -> Path:
    """Which suite the fixtures use (see the ``llmguard_suite_path`` fixture)."""
    marker = request.node.get_closest_marker("llmguard_suite")
    if marker is not None:
        if not marker.args:
            raise pytest.UsageError("@pytest.mark.llmguard_suite needs the suite path as its argument")
        return (Path(request.node.path).parent / str(marker.args[0])).resolve()
    config = request.config
    given = config.getoption("llmguard_suite")
    if given:
        return (config.invocation_params.dir / str(given[0])).resolve()
    ini = config.getini("llmguard_suite")
    if ini:
        return (config.rootpath / str(ini)).resolve()
    pytest.fail(
        "no llmguard suite: mark the test with @pytest.mark.llmguard_suite(path), pass "
        "--llmguard-suite PATH, or set llmguard_suite in the pytest ini",
        pytrace=False,
    )


# -- collection -----------------------------------------------------------------------


class SuiteFile(pytest.File):
    """A suite file; its checks are the items."""

    def collect(self) -> Iterator[pytest.Item]:
        suite = suite_session(self.config, self.path)
        self.config.stash.setdefault(_COLLECTED, set()).add(suite.path)
        for i, check in enumerate(suite.loaded.suite.checks):
            line, _ = suite.loaded.source.locate(("checks", i))
            item = CheckItem.from_parent(self, name=check.id, check=check, suite=suite, line=line)
            item.add_marker("llmguard")
            item.add_marker(f"llmguard_{check.severity.value}")
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:  # type: ignore[override]
        if isinstance(excinfo.value, LlmguardError):
            return str(excinfo.value)  # the suite's one-line, located message
        return super().repr_failure(excinfo)


class CheckFailed(Exception):
    """A blocker check's gate failed."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result)
        self.llmguard_text = describe(result)


class CheckErrored(CheckFailed):
    """A check raised, timed out or returned an invalid result."""


class CheckItem(pytest.Item):
    """One check of a suite. The check runs in setup, so an ERROR is a pytest error."""

    llmguard_check_item = True

    def __init__(self, *, check: CheckConfig, suite: SuiteSession, line: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.suite = suite
        self.line = line
        self.result: CheckResult | None = None
        self.llmguard_payload: dict[str, Any] | None = None

    def setup(self) -> None:
        suite = self.suite
        if len(self.config.stash.get(_COLLECTED, set())) > 1:
            suite.out_dir = suite.out_root / _safe(suite.name)  # several suites: one folder each
        try:
            session = suite.session
        except LlmguardError as exc:
            self.llmguard_payload = {**suite.payload(), "error": str(exc)}
            exc.llmguard_text = str(exc)  # type: ignore[attr-defined]  # one line, no traceback
            raise
        result = session.run_check(self.check)
        self.result = result
        self.user_properties.extend(metric_properties(result))
        self.llmguard_payload = {
            **suite.payload(),
            "result": result.model_dump_json(),
            # for the controller's report under pytest-xdist: where and when it really ran
            "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
            "started_at": session.started_at,
            "prediction_calls": session.cache.stats(),
        }
        waived = result.waiver is not None and result.status in (
            Status.FAIL,
            Status.WARN,
            Status.ERROR,
        )
        if waived:
            pytest.xfail(
                f"waived by {result.waiver.get('approver') if result.waiver else '?'}: "
                + "; ".join(failure_reasons(result))
            )
        if result.status is Status.ERROR:
            if result.allow_error:
                pytest.xfail("ERROR allowed by allow_error: " + "; ".join(failure_reasons(result)))
            raise CheckErrored(result)
        if result.status is Status.SKIP:
            pytest.skip(result.error.message if result.error else "skipped")

    def runtest(self) -> None:
        result = self.result
        assert result is not None
        if result.status is Status.FAIL:
            raise CheckFailed(result)
        if result.status is Status.WARN:
            warnings.warn(
                LlmguardGateWarning(f"{result.id} ({result.severity.value}): " + "; ".join(failure_reasons(result))),
                stacklevel=1,
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        exc = excinfo.value
        if isinstance(exc, CheckFailed):
            return exc.llmguard_text
        if isinstance(exc, LlmguardError):
            return str(exc)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.line - 1 if self.line else None
        return self.path, line, f"{self.suite.name}::{self.check.id} ({self.check.uses})"


def describe(result: CheckResult) -> str:
    """A failed or errored check as pytest shows it."""
    head = f"{result.id} ({result.uses}, {result.severity.value}): {result.status.value.upper()}"
    lines = [head, *(f"  {r}" for r in failure_reasons(result))]
    if result.error is not None and result.error.traceback:
        lines += ["", result.error.traceback.rstrip()]
    return "\n".join(lines)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "suite"


# -- the end of a session -------------------------------------------------------------


def finish_session(config: pytest.Config, payloads: list[dict[str, Any]], review: str) -> tuple[bool, list[str]]:
    """Decide for every suite that ran, write its outputs; return (fail the session?, lines)."""
    groups: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
    for p in payloads:
        groups.setdefault((p["suite"], tuple(p["overrides"])), []).append(p)
    fail = False
    lines: list[str] = []
    for (path, overrides), items in groups.items():
        errors = sorted({p["error"] for p in items if "error" in p})
        suite = suite_session(config, Path(path), list(overrides))
        if errors:
            lines += [f"{suite.name}: not run: {e}" for e in errors]
            fail = True
            continue
        order = {c.id: i for i, c in enumerate(suite.loaded.suite.checks)}
        results = sorted(
            (CheckResult.model_validate_json(p["result"]) for p in items),
            key=lambda r: order.get(r.id, len(order)),
        )
        out_dir = Path(items[0]["out_dir"])
        session = suite.session
        if os.environ.get(SUPERVISED_ENV):  # the supervising pytest reads this run id back
            session.run_id = os.environ[SUPERVISED_ENV]
        if any(p.get("worker") for p in items):
            _merge_worker_facts(session, items)
        outcome = finish_run(session, results, out_dir)
        decision: GateDecision = outcome.report.decision
        total = len(suite.loaded.suite.checks)
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        tally = ", ".join(f"{counts[s.value]} {s.value}" for s in Status if s.value in counts)
        lines.append(f"{suite.name}: {decision.decision.value} ({len(results)} of {total} checks ran: {tally})")
        lines += [f"  - {r}" for r in decision.reasons]
        lines += [f"  warning: {w}" for w in outcome.warnings]
        lines.append(f"  outputs: {', '.join(str(p) for p in outcome.written)}")
        if decision.decision is Decision.BLOCK:
            fail = True
        elif decision.decision is Decision.REVIEW:
            if review == "fail":
                fail = True
                lines.append("  REVIEW fails the session (llmguard_review = fail, as the CLI exits 3)")
            else:
                lines.append("  REVIEW does not fail the session (llmguard_review = pass)")
    return fail, lines


def _merge_worker_facts(session: Session, items: list[dict[str, Any]]) -> None:
    """Make the controller's report tell what the xdist workers did.

    The controller ran no check itself: the start time is the earliest worker's, and the
    model calls are each worker's last (cumulative) count, summed over workers.
    """
    session.started_at = min(str(p["started_at"]) for p in items)
    latest: dict[str, dict[str, int]] = {}
    for p in items:
        mine = latest.setdefault(str(p.get("worker")), {})
        for key, n in p.get("prediction_calls", {}).items():
            mine[key] = max(mine.get(key, 0), int(n))
    session.cache.calls.clear()
    for counts in latest.values():
        for key, n in counts.items():
            model, dataset, method = key.split("/", 2)
            session.cache.calls[(model, dataset, method)] += n


def assert_gate(result: CheckResult, gates: Mapping[str, Any] | None = None, /, **bounds: Any) -> None:
    """Assert that ``result`` passes ``gates`` (or, with none, its own gates).

    An ERROR result always fails the assertion, with the check's error.
    """
    __tracebackhide__ = True
    if result.status is Status.ERROR:
        raise AssertionError(describe(result))
    wanted = {**(gates or {}), **bounds}
    if not wanted:
        failed = failure_reasons(result)
        if failed:
            raise AssertionError(f"{result.id}: gate failed: " + "; ".join(failed))
        return
    evaluation = evaluate_gates(wanted, result.metrics)
    if evaluation.reasons:
        raise AssertionError(f"{result.id}: gate failed: " + "; ".join(evaluation.reasons))


# -- supervision ----------------------------------------------------------------------


def supervise_session(config: pytest.Config, items: list[pytest.Item], review: str) -> tuple[int, str]:
    """Run this pytest invocation again in a child and judge it by the reports it wrote.

    The child gets a fresh run id; exit 0 only when the child exited 0 *and* every suite
    whose checks were selected has a ``report.json`` with that run id deciding PROMOTE
    (or REVIEW under ``llmguard_review = pass``). A model calling ``os._exit(0)``, a
    signal or a crash leaves no such report: the session fails.
    """
    import subprocess
    import sys
    import uuid

    from .report import read_report

    run_id = str(uuid.uuid4())
    suites = {id(i.suite): i.suite for i in items if isinstance(i, CheckItem)}
    several = len(config.stash.get(_COLLECTED, set())) > 1
    paths = [p for p in sys.path if p and Path(p).is_dir()]
    env = {
        **os.environ,
        SUPERVISED_ENV: run_id,
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
    }
    try:
        child = subprocess.run(
            [sys.executable, "-m", "pytest", *config.invocation_params.args],
            cwd=config.invocation_params.dir,
            env=env,
            check=False,
        )
        code = child.returncode
    except (OSError, KeyboardInterrupt) as exc:
        return int(pytest.ExitCode.INTERRUPTED), f"llmguard: the supervised run did not finish: {exc}"
    problems = []
    for suite in suites.values():
        out_dir = suite.out_root / _safe(suite.name) if several else suite.out_root
        path = out_dir / "report.json"
        try:
            report = read_report(path)
        except Exception as exc:  # missing, truncated or malformed: not this run's verdict
            problems.append(f"{suite.name}: no complete report ({path}: {type(exc).__name__})")
            continue
        if report.run_id != run_id:
            problems.append(f"{suite.name}: {path} is not this run's report")
            continue
        decision = report.decision.decision
        if decision is Decision.BLOCK or (decision is Decision.REVIEW and review == "fail"):
            problems.append(f"{suite.name}: {decision.value}")
    if code < 0:
        problems.append(f"the child pytest ended by signal {-code}")
    if code == 0 and not problems:
        return 0, "llmguard: supervised run passed (every suite's report decides PROMOTE)"
    if code == 0 or code < 0:
        code = int(pytest.ExitCode.TESTS_FAILED)
    reason = "; ".join(problems) or f"the child pytest exited {code}"
    return code, f"llmguard: supervised run failed: {reason}"
