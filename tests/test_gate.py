"""The gate is a pure function; no combination of results turns a block into a pass."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llmguard_ops.gate import decide, evaluate_bound
from llmguard_ops.results import CheckResult, Decision, ErrorInfo, GateOutcome, Metric, Severity, Status
from llmguard_ops.suite import GateBound, Policy

statuses = st.sampled_from(list(Status))
severities = st.sampled_from(list(Severity))


def result(i: int, status: Status, severity: Severity, allow_error: bool = False) -> CheckResult:
    gates = [GateOutcome(metric="m", passed=status is Status.PASS, reason="m = 1")]
    error = ErrorInfo(type="E", message="boom") if status is Status.ERROR else None
    return CheckResult(
        id=f"c{i}",
        uses="x.y",
        plugin="p",
        severity=severity,
        status=status,
        gates=gates,
        error=error,
        allow_error=allow_error,
    )


results = st.lists(st.tuples(statuses, severities, st.booleans()), max_size=8).map(
    lambda items: [result(i, s, v, a) for i, (s, v, a) in enumerate(items)]
)


@given(results, st.sampled_from(["warning", "never"]), st.sampled_from(["review", "block", "ignore"]))
def test_decision_follows_the_rules(rs: list[CheckResult], review_on: str, on_skip: str) -> None:
    policy = Policy(review_on=review_on, on_skip=on_skip)  # type: ignore[arg-type]
    d = decide(policy, rs).decision
    blocking = any(
        (r.status is Status.ERROR and not r.allow_error)
        or (r.status in (Status.FAIL, Status.WARN) and r.severity is Severity.BLOCKER)
        or (r.status is Status.SKIP and r.severity is Severity.BLOCKER and on_skip == "block")
        for r in rs
    )
    assert (d is Decision.BLOCK) == blocking
    if d is Decision.PROMOTE:
        assert not any(
            r.status is Status.WARN and r.severity is Severity.WARNING and review_on == "warning" for r in rs
        )


@given(results, st.lists(st.text(min_size=1), min_size=1, max_size=3))
def test_vetoes_always_block(rs: list[CheckResult], vetoes: list[str]) -> None:
    assert decide(Policy(), rs, vetoes).decision is Decision.BLOCK


@given(results, results)
def test_adding_results_never_relaxes_a_block(first: list[CheckResult], more: list[CheckResult]) -> None:
    if decide(Policy(), first).decision is Decision.BLOCK:
        assert decide(Policy(), first + more).decision is Decision.BLOCK


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(finite, finite, finite, st.one_of(st.none(), finite), st.one_of(st.none(), finite))
def test_bound_with_confidence_tests_the_interval(
    a: float, b: float, c: float, lo: float | None, hi: float | None
) -> None:
    lower, value, upper = sorted([a, b, c])
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    if lo is None and hi is None:
        lo = value
    bound = GateBound(min=lo, max=hi, confidence=0.95)
    m = Metric(value=value, lower=lower, upper=upper, confidence=0.95)
    outcome = evaluate_bound("m", bound, m)
    expected = (lo is None or lower >= lo) and (hi is None or upper <= hi)
    assert outcome.passed == expected
    point = evaluate_bound("m", GateBound(min=lo, max=hi), m)
    assert point.passed == ((lo is None or value >= lo) and (hi is None or value <= hi))
    if outcome.passed:
        assert point.passed  # the interval test is never laxer than the point test
