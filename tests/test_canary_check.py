"""canary.compare from a suite file to a report: demo models, request logs, gates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import llmguard_ops
from llmguard_ops import Decision, Status
from llmguard_ops.testing import write_suite

os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

REPO = Path(__file__).resolve().parents[1]


def _demo_suite(demo: Path, tmp_path: Path, candidate: str, baseline: str, check: str) -> Path:
    head = textwrap.dedent(f"""\
        apiVersion: llmguard/v1
        name: canary-test
        models:
          candidate: {{loader: sklearn, path: {demo / "models" / candidate}}}
          baseline:  {{loader: sklearn, path: {demo / "models" / baseline}}}
        datasets:
          current: {{path: {demo / "data" / "holdout.csv"}, target: approved}}
        checks:
        """)
    path = tmp_path / "suite.yaml"
    path.write_text(head + textwrap.indent(textwrap.dedent(check), "  "))
    return path


def test_demo_suite_canary_gates_non_inferiority_with_interval(demo_dir: Path, tmp_path: Path) -> None:
    outcome = llmguard_ops.run(demo_dir / "suite.yaml", tmp_path / "out", only=["canary"])
    result = next(c for c in outcome.report.checks if c.id == "canary")
    assert result.status is Status.PASS, result.error
    delta = result.metrics["accuracy_delta"]
    assert delta.has_interval and delta.confidence == 0.95
    assert delta.lower is not None and delta.lower <= delta.value <= (delta.upper or 0)
    gate = next(g for g in result.gates if g.metric == "accuracy_delta")
    assert gate.tested_low == delta.lower and gate.passed
    assert outcome.report.decision.decision in (Decision.PROMOTE, Decision.REVIEW)
    # the same numbers as performance.classification's paired delta on the same rows
    rows = result.details["comparison"]
    assert {r["test"] for r in rows} == {"mcnemar-chi2", "delong"}
    assert result.details["disagreements"][0]["gap"] >= result.details["disagreements"][-1]["gap"]
    assert 0.5 < result.metrics["agreement_rate"].value < 1


def test_worse_candidate_fails_non_inferiority_and_blocks(demo_dir: Path, tmp_path: Path) -> None:
    suite = _demo_suite(
        demo_dir,
        tmp_path,
        "champion.joblib",
        "candidate.joblib",
        """\
        - id: canary
          uses: canary.compare
          with: {candidate: candidate, baseline: baseline, n_resamples: 300, correction: bh}
          gate:
            accuracy_delta: {min: -0.01, confidence: 0.90}
            regression_detected: {max: 0}
        """,
    )
    outcome = llmguard_ops.run(suite, tmp_path / "out")
    result = outcome.report.checks[0]
    assert result.status is Status.FAIL
    assert outcome.report.decision.decision is Decision.BLOCK
    delta = result.metrics["accuracy_delta"]
    assert delta.confidence == 0.90 and delta.upper is not None and delta.value < 0
    assert result.metrics["regression_detected"].value == 1.0
    assert "Benjamini-Hochberg" in result.details["correction"]
    assert outcome.report.prediction_calls  # predictions came through the shared cache


def test_equivalence_gate_tests_both_bounds(demo_dir: Path, tmp_path: Path) -> None:
    suite = _demo_suite(
        demo_dir,
        tmp_path,
        "candidate.joblib",
        "champion.joblib",
        """\
        - id: canary
          uses: canary.compare
          with: {metrics: [accuracy, f1, log_loss], n_resamples: 200, n_permutations: 200}
          gate:
            accuracy_delta: {min: -0.005, max: 0.005, confidence: 0.9}
        """,
    )
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    gate = result.gates[0]
    assert gate.tested_low == result.metrics["accuracy_delta"].lower
    assert gate.tested_high == result.metrics["accuracy_delta"].upper
    assert not gate.passed  # the challenger is better by ~2.5 points: not equivalent
    tests = {r["metric"]: r["test"] for r in result.details["comparison"]}
    assert tests == {"accuracy": "mcnemar-chi2", "f1": "permutation", "log_loss": "permutation"}


def _request_log(path: Path, n: int, drop: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(int)
    hard = rng.random(n) < 0.3  # rows both models find hard: realistic correlated errors
    base_ok = np.where(hard, rng.random(n) < 0.5, rng.random(n) < 0.97)
    cand_ok = base_ok.copy()
    flip = rng.random(n) < drop / 0.9  # the candidate breaks some rows the baseline gets right
    cand_ok = cand_ok & ~(flip & base_ok)
    pd.DataFrame(
        {
            "request_id": np.arange(n) + 1000,
            "ts": np.arange(n)[::-1],
            "label": y,
            "champion": np.where(base_ok, y, 1 - y),
            "challenger": np.where(cand_ok, y, 1 - y),
        }
    ).to_csv(path, index=False)


@pytest.mark.parametrize("drop,caught", [(0.08, True), (0.0, False)])
def test_replay_of_a_request_log(tmp_path: Path, drop: float, caught: bool) -> None:
    _request_log(tmp_path / "requests.csv", 20_000, drop, seed=5)
    # the docs' example suite, run on a generated log
    suite = tmp_path / "suite.yaml"
    suite.write_text((REPO / "tests" / "data" / "canary_replay.yaml").read_text())
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    replay = result.details["replay"]
    assert [s["share"] for s in replay["stages"]] == [0.01, 0.05, 0.25, 1.0]
    assert result.metrics["replay_regression_detected"].value == float(caught)
    assert (result.status is Status.FAIL) == caught
    if caught:
        assert replay["caught_at"].startswith("stage ")
        assert result.metrics["replay_stop_share"].value < 1.0  # stopped before full rollout
        assert result.details["disagreements"][0]["row"] >= 1000
    else:
        assert replay["caught_at"].startswith("never")


def test_regression_task(tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800)})
    frame["y"] = 2 * frame.a - frame.b + rng.normal(0, 0.3, 800)
    x = frame[["a", "b"]]
    joblib.dump(LinearRegression().fit(x[:400], frame.y[:400]), tmp_path / "lin.joblib")
    joblib.dump(DecisionTreeRegressor(max_depth=3).fit(x[:400], frame.y[:400]), tmp_path / "tree.joblib")
    frame[400:].to_csv(tmp_path / "test.csv", index=False)
    suite = write_suite(
        tmp_path,
        """\
        apiVersion: llmguard/v1
        name: canary-regression
        models:
          candidate: {loader: sklearn, path: tree.joblib}
          baseline: {loader: sklearn, path: lin.joblib}
        datasets:
          current: {path: test.csv, target: y}
        checks:
          - id: canary
            uses: canary.compare
            with:
              task: regression
              n_resamples: 200
              n_permutations: 200
              replay: {metric: mae, stages: [0.5, 1.0]}
            gate: {mae_delta: {max: 0.05, confidence: 0.95}}
        """,
    )
    result = llmguard_ops.run(suite, tmp_path / "out").report.checks[0]
    assert result.status is Status.FAIL  # the shallow tree is clearly worse than the true linear model
    assert result.metrics["mae_delta"].value > 0.1
    assert result.metrics["regression_detected"].value == 1.0
    assert result.metrics["replay_regression_detected"].value == 1.0


def test_bad_params_are_one_line_errors(demo_dir: Path, tmp_path: Path) -> None:
    suite = _demo_suite(
        demo_dir,
        tmp_path,
        "candidate.joblib",
        "champion.joblib",
        """\
        - id: canary
          uses: canary.compare
          with: {metrics: [accuracy, mae]}
        """,
    )
    with pytest.raises(llmguard_ops.SuiteError, match="unknown classification metric 'mae'"):
        llmguard_ops.run(suite, tmp_path / "out")


def test_report_json_carries_interval_and_p_value(demo_dir: Path, tmp_path: Path) -> None:
    suite = _demo_suite(
        demo_dir,
        tmp_path,
        "candidate.joblib",
        "champion.joblib",
        """\
        - id: canary
          uses: canary.compare
          with: {n_resamples: 200}
          gate: {accuracy_delta: {min: -0.01, confidence: 0.95}}
        """,
    )
    llmguard_ops.run(suite, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    metric = data["checks"][0]["metrics"]["accuracy_delta"]
    assert metric["lower"] is not None and metric["p_value"] is not None
    assert "paired bootstrap" in metric["interval_method"]


def test_plugin_modules_import_no_heavy_library() -> None:
    code = (
        "import sys, llmguard_checks.canary, llmguard_checks.generation;"
        "heavy = [m for m in ('sklearn', 'torch', 'deepeval', 'statsmodels', 'transformers',"
        " 'sentence_transformers') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
