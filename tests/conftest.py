"""Shared fixtures: tiny real models and data built in a temporary folder."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("DEEPEVAL_TELEMETRY_OPT_OUT", "YES")

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "suites" / "demo"


@pytest.fixture(scope="session")
def demo_models() -> Path:
    """The demo's models, trained deterministically when missing (as on a fresh clone)."""
    models = DEMO / "models"
    wanted = [models / f"{m}.{ext}" for m in ("candidate", "champion") for ext in ("skops", "joblib")]
    if not all(p.exists() for p in wanted):
        import runpy

        runpy.run_path(str(DEMO / "train_models.py"), run_name="__main__")
    return models


@pytest.fixture(scope="session")
def tabular_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a generated binary-classification dataset and two fitted models."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    root = tmp_path_factory.mktemp("tabular")
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "x3": rng.uniform(size=n),
            "group": rng.choice(["a", "b"], size=n),
            "row_id": np.arange(n),
        }
    )
    logit = 1.5 * frame.x1 - frame.x2 + 0.5 * frame.x3
    frame["label"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame.iloc[:400].to_csv(root / "train.csv", index=False)
    frame.iloc[400:].to_csv(root / "test.csv", index=False)
    train = frame.iloc[:400]
    features = ["x1", "x2", "x3"]
    joblib.dump(LogisticRegression().fit(train[features], train.label), root / "good.joblib")
    joblib.dump(
        DecisionTreeClassifier(max_depth=1, random_state=0).fit(train[features], train.label), root / "weak.joblib"
    )
    return root


@pytest.fixture
def write_suite(tmp_path: Path, tabular_project: Path) -> Callable[[str], Path]:
    """Write a suite file next to the tabular project's data; returns its path."""

    def write(text: str, name: str = "suite.yaml") -> Path:
        path = tabular_project / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


BASE_SUITE = """\
apiVersion: llmguard/v1
name: unit
models:
  candidate: {loader: sklearn, path: good.joblib}
  baseline: {loader: sklearn, path: weak.joblib}
datasets:
  current: {path: test.csv, target: label, sensitive: [group]}
checks:
"""


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs write .llmguard/ (audit log, run history) relative to the current folder:
    keep every test's in its own temporary folder, never in the checkout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMGUARD_HISTORY_DIR", str(tmp_path / ".llmguard" / "runs"))
