"""A scikit-learn text pipeline is fed the dataset's texts, not a one-column frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmguard_ops.cli import main

POSITIVE = ["great film", "loved it", "wonderful acting", "great fun", "a wonderful story", "loved the cast"]
NEGATIVE = ["awful film", "hated it", "boring acting", "dull and awful", "a boring story", "hated the cast"]


@pytest.mark.parametrize("vectorizer", ["count", "tfidf"])
def test_a_text_pipeline_is_scored_by_performance_classification(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vectorizer: str
) -> None:
    import json

    import joblib
    import pandas as pd
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import Pipeline

    train = pd.DataFrame({"review": POSITIVE + NEGATIVE, "label": [1] * 6 + [0] * 6})
    test = pd.DataFrame(
        {
            "review": [
                "great acting",
                "boring film",
                "loved it",
                "awful story",
                "dull cast",
                "wonderful film",
                "boring fun",
                "great story",
            ],
            "label": [1, 0, 1, 0, 0, 1, 1, 1],
            "row": range(8),
        }
    )
    vec = CountVectorizer() if vectorizer == "count" else TfidfVectorizer()
    pipe = Pipeline([("vec", vec), ("clf", LogisticRegression(C=10.0))]).fit(train.review, train.label)
    joblib.dump(pipe, tmp_path / "text.joblib")
    test.to_csv(tmp_path / "test.csv", index=False)
    expected = accuracy_score(test.label, pipe.predict(test.review.tolist()))
    (tmp_path / "suite.yaml").write_text(
        f"""\
apiVersion: llmguard/v1
name: text
models:
  candidate: {{loader: sklearn, path: text.joblib}}
datasets:
  current: {{path: test.csv, target: label, text: review}}
checks:
  - id: quality
    uses: performance.classification
    with: {{n_resamples: 50}}
    gate: {{accuracy: {{min: {min(expected + 0.01, 1.0)}}}}}
""",
        encoding="utf-8",
    )
    code = main(
        [
            "run",
            str(tmp_path / "suite.yaml"),
            "--out",
            str(tmp_path / "out"),
            "-q",
            "--no-audit-log",
            "--history-dir",
            "off",
        ]
    )
    capsys.readouterr()
    check = json.loads((tmp_path / "out" / "report.json").read_text())["checks"][0]
    assert check["status"] == "fail", check.get("error")  # scored (not ERROR), just short of its gate
    assert code == 1
    assert check["metrics"]["accuracy"]["value"] == pytest.approx(expected)
