"""Intervals honest at every n: exact intervals for proportions, and confidence gates the
data cannot support are refused (ERROR, BLOCK) instead of passed by a degenerate bootstrap."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

import llmguard_ops
from llmguard_ops.gate import needed_n
from llmguard_ops.results import Metric
from llmguard_ops.suite import GateBound
from trust_support import project


def _quality(suite: Path, out: Path) -> tuple[str, llmguard_ops.CheckResult]:
    outcome = llmguard_ops.run(suite, out)
    return outcome.report.decision.decision.value, outcome.report.check("quality")


def test_five_correct_rows_do_not_pass_a_70_percent_confidence_gate(tmp_path: Path) -> None:
    suite = project(tmp_path, rows=5, minimum=0.7, confidence=0.95)
    decision, quality = _quality(suite, tmp_path / "out")
    assert decision == "BLOCK"
    # the exact interval fails the gate by itself; the reason says what a pass would need
    assert quality.status.value == "fail"
    (failed,) = quality.failed_gates
    assert "lower 95% bound 0.478" in failed.reason
    assert "needs at least n=11 to ever pass" in failed.reason
    accuracy = quality.metrics["accuracy"]
    assert accuracy.value == 1.0
    oracle = stats.binomtest(5, 5).proportion_ci(confidence_level=0.95, method="exact")
    assert accuracy.lower == pytest.approx(oracle.low) and accuracy.lower == pytest.approx(0.478, abs=1e-3)
    assert accuracy.upper == pytest.approx(oracle.high)
    assert accuracy.interval_method.startswith("clopper-pearson")


def test_small_samples_get_the_exact_interval_and_gate_on_it(tmp_path: Path) -> None:
    # 40 rows, 4 wrong: the bootstrap would be used at n >= 100 only
    suite = project(tmp_path, rows=40, wrong=4, minimum=0.8, confidence=0.95)
    decision, quality = _quality(suite, tmp_path / "out")
    accuracy = quality.metrics["accuracy"]
    oracle = stats.binomtest(36, 40).proportion_ci(confidence_level=0.95, method="exact")
    assert (accuracy.lower, accuracy.upper) == (pytest.approx(oracle.low), pytest.approx(oracle.high))
    assert accuracy.n == 40 and accuracy.value == pytest.approx(0.9)
    # the exact lower bound (0.763) is below the 0.8 minimum: a blocker fails
    assert oracle.low < 0.8
    assert quality.status.value == "fail" and decision == "BLOCK"


def test_precision_and_recall_count_their_own_denominators(tmp_path: Path) -> None:
    suite = project(tmp_path, rows=30, wrong=3, minimum=0.5)
    _, quality = _quality(suite, tmp_path / "out")
    # rows 0..2 have x < 0 (predicted 0) but label 1: three missed positives
    recall, precision = quality.metrics["recall"], quality.metrics["precision"]
    assert recall.n == 18 and precision.n == 15
    oracle = stats.binomtest(15, 18).proportion_ci(confidence_level=0.95, method="exact")
    assert (recall.lower, recall.upper) == (pytest.approx(oracle.low), pytest.approx(oracle.high))


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("minimum", [0.5, 0.7, 0.9, 0.95, 0.99])
def test_needed_n_is_the_smallest_n_whose_perfect_score_clears_the_gate(confidence: float, minimum: float) -> None:
    bound = GateBound(min=minimum, confidence=confidence)
    metric = Metric(
        value=1.0, lower=0.0, upper=1.0, confidence=confidence, interval_method="clopper-pearson (exact)", n=1
    )
    need = int(needed_n(bound, metric))

    def lower(n: int) -> float:
        return float(stats.binomtest(n, n).proportion_ci(confidence_level=confidence).low)

    assert lower(need) >= minimum - 1e-12
    assert need == 1 or lower(need - 1) < minimum


def test_a_max_gate_on_an_error_rate_needs_its_own_n() -> None:
    bound = GateBound(max=0.05, confidence=0.95)
    metric = Metric(value=0.0, lower=0.0, upper=1.0, confidence=0.95, interval_method="wilson", n=1)
    need = int(needed_n(bound, metric))
    upper = stats.binomtest(0, need).proportion_ci(confidence_level=0.95).high
    assert upper <= 0.05 and stats.binomtest(0, need - 1).proportion_ci(confidence_level=0.95).high > 0.05


def test_min_one_at_a_confidence_level_can_never_be_supported() -> None:
    bound = GateBound(min=1.0, confidence=0.95)
    metric = Metric(value=1.0, lower=0.9, upper=1.0, confidence=0.95, interval_method="clopper-pearson", n=10_000)
    assert math.isinf(needed_n(bound, metric))
