"""explain.shap from a suite file to a report, with shap itself as the oracle."""

from __future__ import annotations

import os

# shap's model-agnostic and text explainers JIT-compile numba kernels on first use (about a
# minute on a busy 2-core machine); the tiny inputs here run faster interpreted
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

import llmguard_ops
from llmguard_ops import Status

DATA = Path(__file__).parent / "data" / "explain"
WEIGHTS = {"x0": 3.0, "x1": -2.0, "x2": 1.0, "x3": 0.5, "x4": 0.0}


def _data(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(WEIGHTS))), columns=list(WEIGHTS))
    logit = x.to_numpy() @ np.array(list(WEIGHTS.values()))
    x["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x


def _run(
    tmp_path: Path,
    models: dict[str, Any],
    datasets: dict[str, Any],
    check: dict[str, Any],
    name: str = "explain",
) -> llmguard_ops.CheckResult:
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "explain-test",
        "seed": 3,
        "models": models,
        "datasets": datasets,
        "checks": [{"id": name, "uses": "explain.shap", **check}],
    }
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    outcome = llmguard_ops.run(path, tmp_path / "out")
    result = outcome.report.checks[0]
    assert result.status is not Status.ERROR, result.error
    return result


def _fit_linear(tmp_path: Path, frame: pd.DataFrame, features: list[str], name: str) -> str:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(frame[features], frame["y"])
    joblib.dump(model, tmp_path / f"{name}.joblib")
    return f"{name}.joblib"


def test_linear_ranking_recovers_known_weights_and_equals_shap(tmp_path: Path) -> None:
    import shap

    frame = _data()
    frame.to_csv(tmp_path / "data.csv", index=False)
    _fit_linear(tmp_path, frame, list(WEIGHTS), "lin")
    result = _run(
        tmp_path,
        {"candidate": {"loader": "sklearn", "path": "lin.joblib"}},
        {"current": {"path": "data.csv", "target": "y"}},
        {"with": {"max_samples": 1000, "background": 1000, "top_k": 3}},
    )
    assert result.details["top_features"] == ["x0", "x1", "x2"]
    assert [r["feature"] for r in result.details["ranking"]] == ["x0", "x1", "x2", "x3", "x4"]
    assert result.details["explainer"].startswith("LinearExplainer")
    # the oracle: shap's own LinearExplainer on every row, with every row as background
    model = joblib.load(tmp_path / "lin.joblib")
    x = frame[list(WEIGHTS)]
    expected = np.abs(shap.LinearExplainer(model, shap.maskers.Independent(x, max_samples=len(x)))(x).values).mean(0)
    for feature, value in zip(WEIGHTS, expected, strict=True):
        metric = result.metrics[f"importance.{feature}"]
        assert metric.value == pytest.approx(value, rel=1e-9, abs=1e-12)
        assert metric.lower is not None and metric.upper is not None
        assert metric.lower <= metric.value <= metric.upper
    # for independent standard-normal features mean |SHAP| is proportional to |coef|
    coef = np.abs(model.coef_[0])
    assert np.allclose(expected / expected.sum(), coef / coef.sum(), atol=0.03)
    assert result.metrics["additivity_error"].value < 1e-9
    assert (tmp_path / "out" / result.artifacts["importance"]).stat().st_size > 0
    assert (tmp_path / "out" / result.artifacts["beeswarm"]).stat().st_size > 0


def test_pipeline_tree_additivity_and_one_hot_columns_summed(tmp_path: Path) -> None:
    import shap
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = _data(300)
    frame["colour"] = np.where(frame["x2"] > 0, "red", np.where(frame["x3"] > 0, "green", "blue"))
    numeric = ["x0", "x1", "x4"]
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), numeric),
                        ("cat", OneHotEncoder(sparse_output=False), ["colour"]),
                    ]
                ),
            ),
            ("gbm", GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0)),
        ]
    ).fit(frame[[*numeric, "colour"]], frame["y"])
    joblib.dump(pipe, tmp_path / "gbm.joblib")
    frame.to_csv(tmp_path / "data.csv", index=False)
    result = _run(
        tmp_path,
        {"candidate": {"loader": "sklearn", "path": "gbm.joblib"}},
        {"current": {"path": "data.csv", "target": "y"}},
        {"with": {"max_samples": 1000, "n_local": 2}, "gate": {"additivity_error": {"max": 1e-6}}},
    )
    assert result.status is Status.PASS
    assert result.details["explainer"].startswith("TreeExplainer")
    assert set(result.details["top_features"]) <= {*numeric, "colour"}
    # the oracle: shap on the transformed matrix, one-hot columns summed by hand
    z = pipe[:-1].transform(frame[[*numeric, "colour"]])
    values = shap.TreeExplainer(pipe[-1])(z).values
    grouped = np.column_stack([values[:, :3], values[:, 3:].sum(axis=1)])
    for feature, value in zip([*numeric, "colour"], np.abs(grouped).mean(0), strict=True):
        assert result.metrics[f"importance.{feature}"].value == pytest.approx(value, rel=1e-9)
    local = result.details["local_explanations"]
    assert len(local) == 2 and local[0]["selected_by"] == "smallest probability margin"
    first = local[0]
    assert first["base_value"][0] + sum(c["shap"] for c in first["contributions"]) == pytest.approx(
        first["output"][0], abs=1e-6
    )


def test_candidate_without_a_feature_fails_the_stability_gate(tmp_path: Path) -> None:
    frame = _data()
    frame.to_csv(tmp_path / "data.csv", index=False)
    _fit_linear(tmp_path, frame, list(WEIGHTS), "champion")
    _fit_linear(tmp_path, frame, ["x1", "x2", "x3", "x4"], "dropped")
    _fit_linear(tmp_path, _data(seed=1), list(WEIGHTS), "retrained")
    gate = {"rank_correlation_vs_baseline": {"min": 0.8}, "top_k_overlap": {"min": 1.0}}
    datasets = {"current": {"path": "data.csv", "target": "y"}}
    models = {m: {"loader": "sklearn", "path": f"{m}.joblib"} for m in ("champion", "dropped", "retrained")}
    failed = _run(
        tmp_path,
        models,
        datasets,
        {"with": {"model": "dropped", "baseline": "champion", "top_k": 3}, "gate": gate},
    )
    assert failed.status is Status.FAIL
    assert failed.metrics["top_k_overlap"].value == pytest.approx(2 / 3)
    assert failed.metrics["rank_correlation_vs_baseline"].value < 0.8
    assert failed.details["baseline_comparison"]["baseline_top_features"] == ["x0", "x1", "x2"]
    same = _run(
        tmp_path,
        models,
        datasets,
        {"with": {"model": "retrained", "baseline": "champion", "top_k": 3}, "gate": gate},
    )
    assert same.status is Status.PASS
    assert same.metrics["rank_correlation_vs_baseline"].value == pytest.approx(1.0)


def test_proxy_of_a_sensitive_column_in_the_top_k_fails(tmp_path: Path) -> None:
    frame = _data()
    frame["group"] = np.where(frame["x0"] + 0.3 * np.random.default_rng(5).normal(size=len(frame)) > 0, "a", "b")
    frame.to_csv(tmp_path / "data.csv", index=False)
    _fit_linear(tmp_path, frame, list(WEIGHTS), "lin")
    result = _run(
        tmp_path,
        {"candidate": {"loader": "sklearn", "path": "lin.joblib"}},
        {
            "current": {"path": "data.csv", "target": "y", "sensitive": ["group"]},
            "reference": {"path": "data.csv", "target": "y", "sensitive": ["group"]},
        },
        {
            "with": {"reference": "reference", "top_k": 2, "n_resamples": 99},
            "gate": {"protected_in_top_k": {"max": 0}},
        },
    )
    assert result.status is Status.FAIL
    protected = result.details["protected"]
    assert protected["proxies"] == ["x0"] and protected["in_top_k"] == ["x0"]
    assert protected["associations"][0]["measure"] == "correlation_ratio"
    # same rows on both sides: no attribution drift at all
    assert result.metrics["attribution_drift"].value == pytest.approx(0.0, abs=1e-12)
    assert result.metrics["rank_correlation_vs_reference"].value == pytest.approx(1.0)


def test_model_agnostic_explainer_is_additive_and_budgeted(tmp_path: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    frame = _data(120)
    model = KNeighborsClassifier(n_neighbors=7).fit(frame[list(WEIGHTS)], frame["y"])
    joblib.dump(model, tmp_path / "knn.joblib")
    frame.to_csv(tmp_path / "data.csv", index=False)
    result = _run(
        tmp_path,
        {"candidate": {"loader": "sklearn", "path": "knn.joblib"}},
        {"current": {"path": "data.csv", "target": "y"}},
        {"with": {"max_samples": 8, "background": 10, "max_evals": 22, "plots": False}},
    )
    assert result.details["explainer"].startswith("PermutationExplainer (22 evaluations per row, 10 background")
    assert result.details["n_explained"] == 8
    assert result.details["budget"]["max_evals"] == 22
    assert result.metrics["additivity_error"].value < 1e-9
    assert result.artifacts == {}


def test_token_attributions_of_a_tiny_transformers_classifier(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from _tiny_text import SENTENCES, build_classifier

    build_classifier(tmp_path / "clf")
    pd.DataFrame({"text": SENTENCES[:3]}).to_json(tmp_path / "texts.jsonl", orient="records", lines=True)
    shutil.copy(DATA / "text-suite.yaml", tmp_path / "suite.yaml")
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, (result.error, result.gates)
    assert "PartitionExplainer over shap.maskers.Text" in result.details["explainer"]
    words = {w.strip(",") for s in SENTENCES[:3] for w in s.lower().split()}
    assert set(result.details["top_features"]) <= words | {","}
    assert len(result.details["top_features"]) == 3
    assert result.metrics["protected_in_top_k"].value in (0.0, 1.0)
    assert result.details["budget"]["max_evals"] == 40
    local = result.details["local_explanations"][0]
    assert local["text"] in SENTENCES
    tokens = [t["token"] for t in local["tokens"]]
    assert tokens and all(t.lower() in words | {","} for t in tokens)
    assert local["base_value"] + sum(t["shap"] for t in local["tokens"]) == pytest.approx(local["output"], abs=1e-5)
    assert (tmp_path / "out" / result.artifacts["importance"]).exists()


def test_importing_the_plugin_loads_no_heavy_library() -> None:
    code = (
        "import sys, llmguard_checks.explain, llmguard_checks.robustness; "
        "heavy = ('shap', 'sklearn', 'torch', 'matplotlib', 'hypothesis', 'transformers'); "
        "print(sorted(m for m in heavy "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_suite_explain_check(tmp_path: Path, demo_dir: Path) -> None:
    demo = demo_dir / "suite.yaml"
    outcome = llmguard_ops.run(demo, tmp_path / "out", only=["explain"])
    result = outcome.report.checks[0]
    assert result.status is Status.PASS, result.gates
    assert outcome.report.decision.decision.value == "PROMOTE"
    assert result.details["protected"]["unmeasured"] == []
    assert result.details["baseline_explainer"].startswith("TreeExplainer")
