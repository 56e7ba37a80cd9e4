"""drift.tabular: planted shifts are found, no shift stays at the nominal level, edge cases."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import llmguard_ops
from llmguard_checks.drift import TabularDriftParams
from llmguard_checks.drift._tabular import compare_frames, correct
from llmguard_ops import testing as kit


def make_frames(n_ref: int, n_cur: int, seed: int, shift: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten mixed columns; the columns named in ``shift`` move in the current frame."""
    rng = np.random.default_rng(seed)

    def frame(n: int, moved: bool) -> pd.DataFrame:
        def on(col: str) -> bool:
            return moved and col in shift

        return pd.DataFrame(
            {
                "x1": rng.normal(0.6 if on("x1") else 0.0, 1.0, n),
                "x2": rng.exponential(1.5 if on("x2") else 1.0, n),
                "x3": rng.normal(0, 1, n),
                "x4": rng.uniform(0, 1, n),
                "x5": rng.gamma(2.0, 1.0, n),
                "c1": rng.choice(["a", "b", "c", "d"], n, p=[0.1, 0.2, 0.3, 0.4] if on("c1") else [0.25] * 4),
                "c2": rng.choice(["u", "v", "w"], n),
                "b1": rng.choice(["yes", "no"], n, p=[0.65, 0.35] if on("b1") else [0.5, 0.5]),
                "k1": rng.integers(0, 4, n),  # numeric with 4 values: categorical
                "x6": rng.lognormal(0, 0.5, n),
            }
        )

    return frame(n_ref, False), frame(n_cur, True)


def params(**kw: Any) -> TabularDriftParams:
    return TabularDriftParams.model_validate(kw)


def drifted(features: list[Any]) -> set[str]:
    return {r.column for r in features if r.drifted}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_planted_shifts_with_p_value_tests_are_exactly_found(seed: int) -> None:
    ref, cur = make_frames(800, 800, seed, shift=("x1", "x2", "c1", "b1"))
    features, _, _ = compare_frames(ref, cur, params())
    methods = {r.column: r.method for r in features}
    assert methods == {
        "x1": "ks",
        "x2": "ks",
        "x3": "ks",
        "x4": "ks",
        "x5": "ks",
        "x6": "ks",
        "c1": "chisquare",
        "c2": "chisquare",
        "b1": "z",
        "k1": "chisquare",
    }
    assert drifted(features) == {"x1", "x2", "c1", "b1"}


@pytest.mark.parametrize("seed", [21, 22])
def test_planted_shifts_with_distances_are_exactly_found(seed: int) -> None:
    ref, cur = make_frames(5000, 4000, seed, shift=("x1", "x2", "c1", "b1"))
    features, _, _ = compare_frames(ref, cur, params())
    assert {r.column: r.method for r in features}["x1"] == "wasserstein"
    assert {r.column: r.method for r in features}["c1"] == "jensenshannon"
    assert drifted(features) == {"x1", "x2", "c1", "b1"}
    for r in features:
        assert r.threshold == 0.1 and r.p_value is None


def test_false_positive_rate_stays_nominal_after_correction() -> None:
    """With no shift, 'any column drifted' happens in at most alpha of the seeds (BH = Simes).

    Without correction the same data flags a column in most seeds, so the test has teeth.
    """
    seeds = range(120)
    any_bh = any_none = any_bonf = 0
    for seed in seeds:
        ref, cur = make_frames(200, 200, 1000 + seed)
        feats, _, _ = compare_frames(ref, cur, params())
        any_bh += bool(drifted(feats))
        raw = np.array([r.p_value for r in feats])
        any_none += bool((raw < 0.05).any())
        any_bonf += bool((correct(raw, "bonferroni") < 0.05).any())
    n = len(seeds)
    margin = 3 * math.sqrt(0.05 * 0.95 / n)
    assert any_bh / n <= 0.05 + margin
    assert any_bonf / n <= 0.05 + margin
    assert any_none / n > 0.2  # ten tests at 5 % each: ~40 % of the seeds see a false alarm


def test_correction_is_scipys_and_stated() -> None:
    from scipy import stats

    p = np.array([0.001, 0.01, 0.02, 0.2, 0.9])
    assert correct(p, "benjamini-hochberg") == pytest.approx(stats.false_discovery_control(p))
    assert correct(p, "bonferroni") == pytest.approx(np.minimum(p * 5, 1))
    assert correct(p, "none").tolist() == p.tolist()


def test_edge_cases_are_handled_and_reported() -> None:
    rng = np.random.default_rng(5)
    n = 400
    ref = pd.DataFrame(
        {
            "with_missing": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "constant": np.ones(n),
            "constant_moved": np.ones(n),
            "cats": rng.choice(["a", "b"], n),
            "mixed": pd.Series([1, "x", 2.5, None] * (n // 4), dtype=object),
            "texty_numbers": rng.normal(size=n),
            "all_missing_now": rng.normal(size=n),
            "infinite": rng.normal(size=n),
            "flag": rng.random(n) < 0.5,
            "gone": rng.normal(size=n),
        }
    )
    cur = ref.drop(columns=["gone"]).copy()
    cur["with_missing"] = np.where(rng.random(n) < 0.4, np.nan, rng.normal(size=n))
    cur["constant_moved"] = np.full(n, 2.0)
    cur["cats"] = rng.choice(["a", "b", "new"], n)
    cur["texty_numbers"] = ref["texty_numbers"].map(str)
    cur["all_missing_now"] = np.nan
    cur.loc[:10, "infinite"] = np.inf
    features, _, warnings = compare_frames(ref, cur, params())
    by = {r.column: r for r in features}
    assert by["with_missing"].missing_current > 0.3 and "missing share changed" in by["with_missing"].notes[0]
    assert by["constant"].drifted is False and by["constant"].statistic == 0.0
    assert "reference column is constant" in by["constant"].notes
    assert by["constant_moved"].drifted is True
    assert by["cats"].unseen_categories == ["new"] and by["cats"].method == "chisquare"
    assert by["mixed"].kind == "categorical" and any("mixed" in note for note in by["mixed"].notes)
    assert by["texty_numbers"].kind == "numeric" and by["texty_numbers"].drifted is False
    assert by["all_missing_now"].method == "missing" and by["all_missing_now"].drifted is True
    assert any("infinite" in note for note in by["infinite"].notes)
    assert by["flag"].kind == "categorical" and by["flag"].method == "z"
    assert by["gone"].method == "schema" and by["gone"].drifted is True
    assert any(w.startswith("all_missing_now") for w in warnings)
    for r in features:
        for value in (r.statistic, r.p_value, r.p_value_adjusted, r.distance):
            assert value is None or math.isfinite(value)


def test_forced_methods_per_column_and_errors() -> None:
    ref, cur = make_frames(3000, 3000, 7, shift=("x1",))
    features, _, _ = compare_frames(ref, cur, params(method="psi", methods={"x1": "ks", "x3": "anderson"}))
    by = {r.column: r for r in features}
    assert by["x1"].method == "ks" and by["x1"].drifted
    assert by["x3"].method == "anderson" and by["x3"].p_value is not None
    assert by["x2"].method == "psi" and by["c1"].method == "psi"
    assert by["x2"].notes[0].startswith("binned at 10 reference-quantile bins")
    features, _, _ = compare_frames(ref, cur, params(method="ks"))
    assert {r.column: r.method for r in features}["c1"] == "jensenshannon"  # ks needs numbers: auto
    features, _, _ = compare_frames(ref, cur, params(methods={"k1": "ks"}))
    assert {r.column: r.kind for r in features}["k1"] == "numeric"  # few values, but KS asked
    with pytest.raises(ValueError, match="'ks' needs numbers"):
        compare_frames(ref, cur, params(methods={"c1": "ks"}))


def write_suite(tmp_path: Path, ref: pd.DataFrame, cur: pd.DataFrame, check: str, models: str = "") -> Path:
    return kit.write_suite(
        tmp_path,
        "apiVersion: llmguard/v1\nname: drift-test\n"
        + models
        + "datasets:\n  reference: {path: ref.csv, target: y}\n"
        + "  current: {path: cur.csv, target: y}\n"
        + "checks:\n"
        + check,
        frames={"ref.csv": ref, "cur.csv": cur},
    )


def test_suite_run_reports_metrics_details_and_gates(tmp_path: Path) -> None:
    ref, cur = make_frames(600, 600, 3, shift=("x1",))
    ref["y"] = (ref["x1"] > 0).astype(int)
    cur["y"] = (cur["x1"] > 0).astype(int)
    check = (
        "  - id: drift\n    uses: drift.tabular\n    with: {correction: bonferroni}\n"
        "    gate: {share_drifted_columns: {max: 0.3}, dataset_drift: {max: 0},\n"
        "           'column.x1.drifted': {max: 0}}\n"
        "    severity: warning\n"
    )
    outcome = llmguard_ops.run(write_suite(tmp_path, ref, cur, check), tmp_path / "out")
    result = outcome.report.checks[0]
    assert result.status.value == "warn", result.error
    assert outcome.report.decision.decision.value == "REVIEW"
    m = result.metrics
    assert m["column.x1.drifted"].value == 1.0 and m["share_drifted_columns"].value == pytest.approx(0.1)
    assert m["target.drifted"].value == 1.0 and m["column.x1.p_value"].p_value is not None
    assert m["dataset_p_value"].value == min(
        r["p_value_adjusted"] for r in result.details["columns"] if r["role"] == "feature"
    )
    assert result.details["correction"].startswith("Bonferroni")
    assert {row["column"] for row in result.details["columns"]} >= {"x1", "target"}
    assert (outcome.out_dir / result.artifacts["columns"]).read_text().startswith("column,role,kind,method")
    json.dumps(result.details)


def test_gate_on_an_undeclared_metric_is_a_suite_error(tmp_path: Path) -> None:
    ref, cur = make_frames(50, 50, 3)
    ref["y"] = cur["y"] = 0
    check = "  - id: drift\n    uses: drift.tabular\n    gate: {'column.x1.bogus': {max: 0}}\n"
    with pytest.raises(llmguard_ops.SuiteError, match=r"no metric 'column\.x1\.bogus'"):
        llmguard_ops.run(write_suite(tmp_path, ref, cur, check), tmp_path / "out")


def test_prediction_drift_of_a_real_model(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    ref, cur = make_frames(1500, 1500, 9, shift=("x1",))
    features = ["x1", "x3", "x4"]
    ref["y"] = (ref["x1"] + 0.5 * ref["x3"] > 0).astype(int)
    cur["y"] = (cur["x1"] + 0.5 * cur["x3"] > 0).astype(int)
    joblib.dump(LogisticRegression().fit(ref[features], ref["y"]), tmp_path / "m.joblib")
    models = "models:\n  candidate: {loader: sklearn, path: m.joblib}\n"
    check = (
        "  - id: drift\n    uses: drift.tabular\n"
        "    with: {model: candidate, columns: [x1, x3, x4]}\n"
        "    gate: {prediction.drifted: {max: 0}}\n"
    )
    with pytest.warns(UserWarning):
        outcome = llmguard_ops.run(write_suite(tmp_path, ref, cur, check, models), tmp_path / "out")
    result = outcome.report.checks[0]
    assert result.status.value == "fail", result.error
    assert result.metrics["prediction.drifted"].value == 1.0
    assert result.metrics["prediction.distance"].value > 0.1
    assert "positive-class score" in result.details["prediction_source"]
    assert result.metrics["n_columns"].value == 3.0


def test_demo_flags_exactly_income_and_debt_ratio(tmp_path: Path, demo_dir: Path) -> None:
    outcome = llmguard_ops.run(
        demo_dir / "suite.yaml", tmp_path / "out", only=["data-drift"], write=False
    )  # skops: no pickle warning
    result = outcome.report.checks[0]
    assert result.error is None
    flagged = {r["column"] for r in result.details["columns"] if r["role"] == "feature" and r["drifted"]}
    assert flagged == {"income", "debt_ratio"}
    assert result.metrics["prediction.drifted"].value == 0.0
