"""Learnt gates, Prometheus persistence and ``llmguard rules test``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy.stats import median_abs_deviation

from llmguard_ops.cli import main
from llmguard_ops.gate import evaluate_bound
from llmguard_ops.monitor.bands import learn
from llmguard_ops.monitor.persistence import firing, state
from llmguard_ops.monitor.rules import expand, run_tests, simulate
from llmguard_ops.monitor.spec import GatePrior, LearnedBand
from llmguard_ops.results import Metric
from llmguard_ops.suite import GateBound

ROOT = Path(__file__).resolve().parents[1]


# persistence: the cases of Prometheus' rule-evaluation tests, one evaluation per window
@pytest.mark.parametrize(
    ("breached", "for_", "keep", "expected"),
    [
        ([0, 1, 1, 0], 1, 0, [0, 1, 1, 0]),
        ([0, 1, 1, 1, 0], 3, 0, [0, 0, 0, 1, 0]),  # pending twice, fires on the third
        ([1, 0, 1, 0, 1, 1], 2, 0, [0, 0, 0, 0, 0, 1]),  # a broken run restarts the count
        ([1, 0, 0, 0], 1, 2, [1, 1, 1, 0]),  # keeps firing 2 windows after it clears
        ([1, 0, 1, 0, 0, 0], 1, 2, [1, 1, 1, 1, 1, 0]),  # the condition back while kept: resets
        ([1, 0, 0], 2, 5, [0, 0, 0]),  # never fired, nothing to keep
    ],
)
def test_firing_follows_prometheus(breached: list[int], for_: int, keep: int, expected: list[int]) -> None:
    assert firing([bool(b) for b in breached], for_, keep) == [bool(e) for e in expected]


def test_state_names_pending_and_firing() -> None:
    assert state([False, True], 2) == "pending"
    assert state([True, True], 2) == "firing"
    assert state([True, False], 1) == "inactive"
    with pytest.raises(ValueError):
        firing([True], 0)


def test_bands_match_numpy_and_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(10, 2, 30)
    band = learn(LearnedBand(method="mean_std", k=3, window=20, min_history=5), list(x))
    assert band is not None
    assert band.n == 20
    assert band.centre == pytest.approx(x[-20:].mean())
    assert band.high == pytest.approx(x[-20:].mean() + 3 * x[-20:].std(ddof=1))
    mad = learn(LearnedBand(method="median_mad", k=2, window=30, min_history=5), list(x))
    assert mad is not None
    assert mad.low == pytest.approx(np.median(x) - 2 * median_abs_deviation(x, scale="normal"))
    import pandas as pd

    ewma = learn(LearnedBand(method="ewma", k=3, alpha=0.4, window=30, min_history=5), list(x))
    assert ewma is not None
    assert ewma.centre == pytest.approx(pd.Series(x).ewm(alpha=0.4).mean().iloc[-1])


def test_band_waits_for_min_history_and_leaves_out_fired_windows() -> None:
    spec = LearnedBand(window=10, min_history=5)
    assert learn(spec, [1.0, 1.1, 0.9, 1.0]) is None
    values = [1.0, 1.1, 0.9, 1.0, 50.0, 1.05, 0.95]
    with_outlier = learn(spec, values)
    without = learn(spec, values, [False, False, False, False, True, False, False])
    assert with_outlier is not None and without is not None
    assert without.n == 6
    assert without.high is not None and with_outlier.high is not None
    assert without.high < 2 < with_outlier.high  # Deequ's rule keeps the band tight


def test_gate_bound_accepts_learned_and_persistence() -> None:
    bound = GateBound.model_validate({"learned": {"k": 3}, "for": 2, "keep_firing_for": 1})
    assert bound.for_ == 2 and bound.min is None and bound.max is None
    with pytest.raises(ValidationError, match="a gate needs"):
        GateBound.model_validate({"for": 2})
    with pytest.raises(ValidationError):
        GateBound.model_validate({"learned": {"k": 3, "methd": "ewma"}})
    # without a recorded prior (llmguard run) a gate is as static as before
    assert not evaluate_bound("m", GateBound(max=1.0, **{"for": 3}), Metric(value=2.0)).passed


def test_evaluate_bound_applies_the_prior() -> None:
    pending = GateBound.model_validate({"max": 1.0, "for": 2, "prior": {"breached": [False]}})
    outcome = evaluate_bound("m", pending, Metric(value=2.0))
    assert outcome.passed and "pending" in outcome.reason
    fires = pending.model_copy(update={"prior": GatePrior(breached=[True])})
    assert not evaluate_bound("m", fires, Metric(value=2.0)).passed
    kept = GateBound.model_validate({"max": 1.0, "keep_firing_for": 1, "prior": {"breached": [True]}})
    outcome = evaluate_bound("m", kept, Metric(value=0.5))
    assert not outcome.passed and "keeps firing" in outcome.reason


def test_simulate_uses_static_bound_until_learnt() -> None:
    bound = GateBound.model_validate({"max": 5.0, "learned": {"min_history": 3, "window": 5, "k": 3}})
    steps = simulate(bound, [1.0, 1.2, 6.0, 1.1, 0.9, 1.0, 2.5])
    assert [s.high for s in steps[:3]] == [5.0, 5.0, 5.0]
    assert steps[2].fired  # static bound
    assert steps[6].fired  # band learnt from 1.0, 1.2, 1.1, 0.9, 1.0 (6.0 left out)
    assert steps[6].high is not None and steps[6].high < 2.5


def test_expand_reads_promtool_notation() -> None:
    assert expand("1+1x3 10") == [1, 2, 3, 4, 10]
    assert expand("5-0.5x2") == [5, 4.5, 4]
    with pytest.raises(ValueError):
        expand("1+x")


def test_shipped_rules_file_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(ROOT / "suites" / "monitor" / "rules.yml")]) == 0
    assert "SUCCESS" in capsys.readouterr().out


def test_rules_test_fails_on_a_rule_that_does_not_fire(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n  lat: {learned: {k: 3, window: 10, min_history: 5}, for: 3}\n"
        "tests:\n  - name: expects a firing the for-3 rule cannot give\n    rule: lat\n"
        "    series: '10 11 10 9 10 11 10 30 30 10'\n    expect_firing: [7, 8]\n"
    )
    ok, lines = run_tests(rules)
    assert not ok
    assert any("window 7: expected firing, not firing" in line for line in lines)
    assert main(["rules", "test", str(rules)]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_rules_test_fails_on_an_unexpected_firing(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  lat: {max: 5}\ntests:\n  - {name: t, rule: lat, series: '1 9 1'}\n")
    ok, lines = run_tests(rules)
    assert not ok and any("window 1: firing, not expected" in line for line in lines)


def test_rules_file_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  lat: {max: 5}\ntests:\n  - {name: t, rule: latt, series: '1'}\n")
    assert main(["rules", "test", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "tests.0.rule" in err and "unknown rule 'latt'" in err
