"""explain.lime from a suite file to a report, with the lime package itself as the oracle."""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_DISABLE_JIT", "1")  # shap's text explainer, as in test_explain_shap

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

import llmguard_ops
from llmguard_ops import Status

WEIGHTS = {"x0": 3.0, "x1": -2.0, "x2": 1.0, "x3": 0.4, "x4": 0.0}


def _data(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, len(WEIGHTS))), columns=list(WEIGHTS))
    logit = x.to_numpy() @ np.array(list(WEIGHTS.values()))
    x["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x


def _run(tmp_path: Path, models: dict[str, Any], datasets: dict[str, Any], check: dict[str, Any]) -> Any:
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "lime-test",
        "seed": 11,
        "models": models,
        "datasets": datasets,
        "checks": [{"id": "lime", "uses": "explain.lime", **check}],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "out").report.checks[0]
    assert result.status is not Status.ERROR, result.error
    return result


def test_linear_model_ranking_equals_coefficients_and_values_equal_lime(tmp_path: Path) -> None:
    from lime.lime_tabular import LimeTabularExplainer
    from sklearn.linear_model import LogisticRegression

    frame = _data(60)
    frame.to_csv(tmp_path / "data.csv", index=False)
    train = _data(2000, seed=1)
    model = LogisticRegression().fit(train[list(WEIGHTS)], train.y)
    joblib.dump(model, tmp_path / "lin.joblib")
    result = _run(
        tmp_path,
        {"candidate": {"loader": "sklearn", "path": "lin.joblib"}},
        {"current": {"path": "data.csv", "target": "y"}},
        {
            # every row explained, every row LIME's training data: the oracle can rebuild both
            "with": {"max_samples": 60, "background": 60, "num_samples": 500, "top_k": 3},
            "gate": {"shap_lime_agreement": {"min": 0.8}},
        },
    )
    assert result.status is Status.PASS, result.failed_gates
    # the ranking of a linear model on scaled features follows |coefficient|
    ranking = [r["feature"] for r in result.details["ranking"]]
    order = list(np.array(list(WEIGHTS))[np.argsort(-np.abs(model.coef_[0]))])
    assert ranking[:4] == order[:4]
    assert result.details["top_features"] == ["x0", "x1", "x2"]
    # the oracle: lime's own explainer, same training rows, same seed, same row order
    x = frame[list(WEIGHTS)].to_numpy(dtype=float)
    explainer = LimeTabularExplainer(
        x,
        mode="classification",
        feature_names=list(WEIGHTS),
        categorical_features=[],
        categorical_names={},
        discretize_continuous=True,
        random_state=result.seed,
    )

    # lime perturbs arrays; the model was fitted on named columns (sklearn warns without them)
    def predict_proba(rows: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_proba(pd.DataFrame(rows, columns=list(WEIGHTS))))

    weights = np.zeros((len(x), len(WEIGHTS)))
    for i, row in enumerate(x):
        exp = explainer.explain_instance(row, predict_proba, labels=(1,), num_features=5, num_samples=500)
        for j, w in exp.as_map()[1]:
            weights[i, j] = w
    expected = np.abs(weights).mean(axis=0)
    for feature, value in zip(WEIGHTS, expected, strict=True):
        metric = result.metrics[f"importance.{feature}"]
        assert metric.value == pytest.approx(value, rel=1e-9, abs=1e-12)
        assert metric.lower is not None and metric.lower <= metric.value <= metric.upper
    local = result.details["local_explanations"][0]
    assert {w["feature"]: w["lime"] for w in local["weights"]} == pytest.approx(
        dict(zip(WEIGHTS, weights[0], strict=True))
    )
    # agreement with SHAP (LinearExplainer on the same rows), per row and overall
    agree = result.metrics["shap_lime_agreement"]
    assert agree.value >= 0.8
    row = result.metrics["shap_lime_row_agreement"]
    assert -1 <= row.lower <= row.value <= row.upper <= 1
    assert result.details["shap_explainer"].startswith("LinearExplainer")
    assert len(result.details["shap_lime"]["per_row"]) == 60
    assert 0 < result.metrics["local_fit"].value <= 1
    assert result.details["budget"]["model_rows"] == 60 * 500


def test_budget_beyond_the_limit_is_an_error_and_baseline_is_compared(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = _data(300)
    frame.to_csv(tmp_path / "data.csv", index=False)
    joblib.dump(LogisticRegression().fit(frame[list(WEIGHTS)], frame.y), tmp_path / "a.joblib")
    joblib.dump(LogisticRegression().fit(frame[["x0", "x2", "x3"]], frame.y), tmp_path / "b.joblib")
    models = {
        "candidate": {"loader": "sklearn", "path": "a.joblib"},
        "baseline": {"loader": "sklearn", "path": "b.joblib"},
    }
    datasets = {"current": {"path": "data.csv", "target": "y"}}
    suite = {
        "apiVersion": "llmguard/v1",
        "name": "lime-budget",
        "models": models,
        "datasets": datasets,
        "checks": [
            {
                "id": "lime",
                "uses": "explain.lime",
                "with": {"max_samples": 100, "num_samples": 1000, "max_model_rows": 50_000},
            }
        ],
    }
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
    err = llmguard_ops.run(tmp_path / "suite.yaml", tmp_path / "o1").report.checks[0]
    assert err.status is Status.ERROR and err.error is not None
    assert "budget: 100 rows x 1000 samples" in err.error.message
    result = _run(
        tmp_path,
        models,
        datasets,
        {
            "with": {
                "baseline": "baseline",
                "max_samples": 20,
                "num_samples": 300,
                "top_k": 2,
                "shap_agreement": False,
                "plots": False,
            },
            "gate": {"top_k_overlap": {"min": 1.0}},
        },
    )
    # the baseline never saw x1, the candidate's second feature
    assert result.status is Status.FAIL
    assert result.metrics["top_k_overlap"].value == 0.5
    assert "shap_lime_agreement" not in result.metrics


class KeywordSentiment:
    """A text classifier: P(positive) rises with 'great', falls with 'awful'."""

    input_kind = "text"
    tokenizer = r"\W+"  # shap's text masker splits on this pattern (for the agreement)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        score = np.array(
            [2.0 * t.lower().split().count("great") - 3.0 * t.lower().split().count("awful") for t in texts]
        )
        p = 1 / (1 + np.exp(-score))
        return np.column_stack([1 - p, p])


def test_text_classifier_words_and_agreement(tmp_path: Path) -> None:
    (tmp_path / "kw.py").write_text(
        "from test_explain_lime import KeywordSentiment\n\ndef model():\n    return KeywordSentiment()\n"
    )
    texts = [
        "the food was great and the staff great",
        "an awful wait and awful coffee",
        "great view but awful service",
        "the room was clean",
    ]
    pd.DataFrame({"text": texts}).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    result = _run(
        tmp_path,
        {"candidate": {"loader": "python", "path": "kw.py:model"}},
        {"current": {"path": "t.jsonl", "text": "text"}},
        {
            "with": {
                "max_samples": 4,
                "num_samples": 300,
                "top_k": 2,
                "protected": ["awful"],
                "max_evals": 60,
            },
            "gate": {"protected_in_top_k": {"max": 0}},
        },
    )
    assert result.details["top_features"] == ["awful", "great"]
    assert result.status is Status.FAIL  # 'awful' drives the decision
    # both explainers put the two sentiment words first; the near-zero rest ranks noisily
    agreement = result.details["shap_lime"]
    assert agreement["lime_top_features"] == ["awful", "great"]
    assert set(agreement["shap_top_features"]) == {"awful", "great"}
    assert -1 <= result.metrics["shap_lime_agreement"].value <= 1
    assert "shap_lime_row_agreement" in result.metrics
    assert result.details["explainer"].startswith("LimeTextExplainer")


def test_docs_suite(tmp_path: Path) -> None:
    import shutil

    from sklearn.linear_model import LogisticRegression

    frame = _data(400)
    frame.to_csv(tmp_path / "data.csv", index=False)
    train = _data(2000, seed=1)
    joblib.dump(LogisticRegression().fit(train[list(WEIGHTS)], train.y), tmp_path / "lin.joblib")
    joblib.dump(LogisticRegression().fit(train[["x0", "x1", "x3"]], train.y), tmp_path / "champion.joblib")
    shutil.copy(Path(__file__).parent / "data" / "explain" / "lime-suite.yaml", tmp_path / "s.yaml")
    result = llmguard_ops.run(tmp_path / "s.yaml", tmp_path / "out").report.checks[0]
    assert result.status is Status.PASS, (result.error, result.failed_gates)
    assert result.metrics["top_k_overlap"].value == pytest.approx(2 / 3)
