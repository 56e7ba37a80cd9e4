"""The gate: a pure function of the suite's policy and the check results.

No I/O, no plugins: the same inputs always give the same decision, so the decision in
a report can be recomputed by anyone from the report itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .results import CheckResult, Decision, GateDecision, GateOutcome, Metric, Severity, Status
from .suite import GateBound, Policy


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.6g}"


def evaluate_bound(name: str, bound: GateBound, metric: Metric) -> GateOutcome:
    """Test one metric against one bound.

    Without ``confidence`` the point estimate is compared. With it, ``min`` is compared
    with the interval's lower end and ``max`` with its upper end, so the bound must hold
    for every value the interval admits. The caller guarantees the interval exists at
    the asked level (see :func:`interval_problem`). The tested ends are the hull of
    the interval and the estimate, so no interval can make a gate easier than the
    point estimate.
    """
    use_ci = bound.confidence is not None
    low = metric.lower if use_ci else metric.value
    high = metric.upper if use_ci else metric.value
    # an interval that excludes its own estimate (a percentile bootstrap of a biased
    # statistic) never makes a gate easier than the estimate itself: test the hull
    if use_ci and low is not None:
        low = min(low, metric.value)
    if use_ci and high is not None:
        high = max(high, metric.value)
    problems = []
    if bound.min is not None and (low is None or low < bound.min):
        what = f"lower {bound.confidence:.0%} bound {_fmt(low)}" if use_ci else _fmt(low)
        problems.append(f"{what} < min {_fmt(bound.min)}")
    if bound.max is not None and (high is None or high > bound.max):
        what = f"upper {bound.confidence:.0%} bound {_fmt(high)}" if use_ci else _fmt(high)
        problems.append(f"{what} > max {_fmt(bound.max)}")
    if problems and use_ci:
        support = support_problem(name, bound, metric)
        if support is not None:  # the failure stands; say what a passing run would need
            problems.append(support.split(": ", 1)[-1].replace("to decide it", "to ever pass"))
    interval = f" [{_fmt(metric.lower)}, {_fmt(metric.upper)}]" if metric.has_interval else ""
    head = f"{name} = {_fmt(metric.value)}{interval}"
    reason = f"{head}: " + "; ".join(problems) if problems else f"{head} within gate"
    passed = not problems
    if bound.prior is not None:  # llmguard monitor: Prometheus' for / keep_firing_for
        from .monitor.persistence import firing

        fires = firing([*bound.prior.breached, not passed], bound.for_ or 1, bound.keep_firing_for or 0)[-1]
        if fires != (not passed):
            reason += (
                f" (pending: for {bound.for_} windows)"
                if passed is False
                else f" (keeps firing: keep_firing_for {bound.keep_firing_for} windows)"
            )
        passed = not fires
    return GateOutcome(
        metric=name,
        min=bound.min,
        max=bound.max,
        confidence=bound.confidence,
        value=metric.value,
        tested_low=low if bound.min is not None else None,
        tested_high=high if bound.max is not None else None,
        passed=passed,
        reason=reason,
    )


def interval_problem(name: str, bound: GateBound, metric: Metric | None) -> str | None:
    """Why ``bound`` cannot be tested on ``metric`` (a check defect → ERROR), or None."""
    if metric is None:
        return f"the check did not report gated metric '{name}'"
    if bound.confidence is None:
        return None
    if not metric.has_interval:
        return f"gate on '{name}' asks for a {bound.confidence:.0%} interval but the check reported none"
    if metric.confidence is None or abs(metric.confidence - bound.confidence) > 1e-9:
        return (
            f"gate on '{name}' asks for a {bound.confidence:.0%} interval but the check reported "
            f"one at {_fmt(metric.confidence)}"
        )
    support = support_problem(name, bound, metric)
    if support is not None and evaluate_bound(name, bound, metric).passed:
        # too few rows to let the interval decide a pass (a bootstrap over 5 rows is [1, 1]):
        # refused, so it blocks. A gate the interval already fails stays a plain failure.
        return support
    return None


MIN_BOOTSTRAP_N = 10
"""Fewest rows over which a bootstrap interval may decide a confidence gate."""


def _is_proportion(metric: Metric) -> bool:
    method = (metric.interval_method or "").lower()
    return method.startswith(("clopper-pearson", "wilson", "exact"))


def needed_n(bound: GateBound, metric: Metric) -> float:
    """The smallest sample size at which ``bound`` could hold for ``metric``'s interval.

    For a proportion with an exact interval: even n successes of n have a lower bound
    of (α/2)^(1/n), so ``min: m`` needs n ≥ ln(α/2)/ln(m); likewise ``max: m`` needs
    n ≥ ln(α/2)/ln(1 - m). For a bootstrap interval: :data:`MIN_BOOTSTRAP_N` rows.
    Infinity when no n suffices (``min: 1`` with a confidence level).
    """
    assert bound.confidence is not None
    method = (metric.interval_method or "").lower()
    if _is_proportion(metric):
        tail = math.log((1 - bound.confidence) / 2)
        need = 1.0
        for limit, bad in ((bound.min, bound.min), (bound.max, None if bound.max is None else 1 - bound.max)):
            if limit is None or bad is None or bad <= 0:
                continue
            need = max(need, math.inf if bad >= 1 else math.ceil(tail / math.log(bad)))
        return need
    if "bootstrap" in method:
        return MIN_BOOTSTRAP_N
    return 1.0


def support_problem(name: str, bound: GateBound, metric: Metric) -> str | None:
    """Why the data behind ``metric`` cannot support the confidence gate ``bound``, or None.

    A confidence gate the data cannot support is refused (an ERROR of the check, which
    blocks) rather than decided by a degenerate interval. Only metrics that report
    their effective sample size ``n`` are held to it.
    """
    if bound.confidence is None or metric.n is None:
        return None
    if name.split(".", 1)[0].endswith(("_delta", "_ratio")) and _is_proportion(metric):
        # a paired difference of rates is no proportion: its exact interval can reach 0 and
        # below, so the all-successes bound that sizes a proportion does not apply
        return None
    need = needed_n(bound, metric)
    if metric.n >= need:
        return None
    kind = "an exact interval" if _is_proportion(metric) else "a bootstrap interval"
    wanted = "no sample size" if math.isinf(need) else f"at least n={int(need)}"
    return (
        f"gate on '{name}' at {bound.confidence:.0%} cannot be supported by n={metric.n}: "
        f"{kind} needs {wanted} to decide it"
    )


@dataclass(frozen=True)
class GateEvaluation:
    """Every gate of a check tested against its metrics (see :func:`evaluate_gates`).

    ``outcomes`` holds one :class:`~llmguard_ops.GateOutcome` per bound that could be
    tested; ``problems`` says why the others could not (the metric is missing, or the
    interval a confidence gate needs is absent, at another level, or too weakly supported):
    the host records such a check as ERROR. ``reasons`` lists, in gate order, the problem
    or the failure of every bound that did not pass.
    """

    outcomes: tuple[GateOutcome, ...] = ()
    problems: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every bound could be tested and holds."""
        return not self.problems and all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> list[GateOutcome]:
        """The tested bounds that do not hold."""
        return [o for o in self.outcomes if not o.passed]


def evaluate_gates(gates: Mapping[str, GateBound | Mapping[str, Any]], metrics: Mapping[str, Metric]) -> GateEvaluation:
    """Does each metric pass its gate? The one answer the host, the pytest plugin and checks use.

    ``gates`` maps a metric name to a :class:`~llmguard_ops.GateBound` (or a mapping with
    ``min``/``max``/``confidence`` as in a suite file); ``metrics`` is what a check
    reported (``CheckOutput.metrics`` or ``CheckResult.metrics``). Pure: no I/O, the
    same inputs give the same evaluation.
    """
    outcomes: list[GateOutcome] = []
    problems: list[str] = []
    reasons: list[str] = []
    for name, spec in gates.items():
        bound = spec if isinstance(spec, GateBound) else GateBound.model_validate(spec)
        metric = metrics.get(name)
        problem = interval_problem(name, bound, metric)
        if problem is not None or metric is None:
            problem = problem or f"the check did not report gated metric '{name}'"
            problems.append(problem)
            reasons.append(problem)
            continue
        outcome = evaluate_bound(name, bound, metric)
        outcomes.append(outcome)
        if not outcome.passed:
            reasons.append(outcome.reason)
    return GateEvaluation(outcomes=tuple(outcomes), problems=tuple(problems), reasons=tuple(reasons))


def status_of(severity: Severity, outcomes: Sequence[GateOutcome]) -> Status:
    """PASS when every gate holds; a failed gate is FAIL for blockers, WARN otherwise."""
    if all(o.passed for o in outcomes):
        return Status.PASS
    return Status.FAIL if severity is Severity.BLOCKER else Status.WARN


def decide(
    policy: Policy,
    results: Iterable[CheckResult],
    vetoes: Iterable[str] = (),
    *,
    signed: bool = False,
) -> GateDecision:
    """Reduce check results to PROMOTE / REVIEW / BLOCK, with every reason.

    * a check in ERROR blocks (fail closed) unless it sets ``allow_error: true``;
    * a failed blocker blocks;
    * a failed warning asks for REVIEW when ``policy.review_on == "warning"``;
    * ``info`` never gates;
    * a skipped blocker follows ``policy.on_skip``;
    * a waived check's failure is recorded and does not gate;
    * any veto from a plugin blocks;
    * an unsigned run (``signed`` false: no trusted key) blocks when
      ``policy.require_signature`` is set. Nothing turns a BLOCK into a pass.
    """
    block: list[str] = []
    review: list[str] = []
    notes: list[str] = []
    for r in results:
        waived = r.waiver is not None and r.status in (Status.FAIL, Status.WARN, Status.ERROR)
        if r.status is Status.ERROR:
            message = r.error.message if r.error else "error"
            line = f"{r.id}: ERROR: {message}"
            if r.allow_error:
                notes.append(line + " (allowed by allow_error)")
            elif waived:
                notes.append(line + f" (waived by {r.waiver.get('approver') if r.waiver else '?'})")
            else:
                block.append(line)
        elif r.status in (Status.FAIL, Status.WARN):
            failed = "; ".join(g.reason for g in r.failed_gates)
            line = f"{r.id} ({r.severity.value}): {failed}"
            if waived:
                notes.append(line + f" (waived by {r.waiver.get('approver') if r.waiver else '?'})")
            elif r.severity is Severity.BLOCKER:
                block.append(line)
            elif r.severity is Severity.WARNING and policy.review_on == "warning":
                review.append(line)
            else:
                notes.append(line)
        elif r.status is Status.SKIP and r.severity is Severity.BLOCKER:
            line = f"{r.id}: skipped blocker check"
            if policy.on_skip == "block":
                block.append(line)
            elif policy.on_skip == "review":
                review.append(line)
            else:
                notes.append(line)
    block += [f"veto: {v}" for v in vetoes]
    if policy.require_signature and not signed:
        block.append(
            "policy.require_signature: the run is not signed with a trusted key (pass "
            "--key PATH or set LLMGUARD_SIGNING_KEY; a development key does not count)"
        )
    if block:
        return GateDecision.of(Decision.BLOCK, block + review + notes)
    if review:
        return GateDecision.of(Decision.REVIEW, review + notes)
    return GateDecision.of(Decision.PROMOTE, notes)
