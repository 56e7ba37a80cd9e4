"""Tests of template.row_quality with llmguard-ops's testing kit."""

from __future__ import annotations

import llmguard_template
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

pytest_plugins = ["llmguard_ops.testing"]


def project_with(llmguard_project, frame):  # type: ignore[no-untyped-def]
    features = frame[["x1", "x2"]].fillna(0)
    llmguard_project.dataset("current", frame, target="y")
    llmguard_project.model("candidate", LogisticRegression().fit(features, frame["y"]))
    llmguard_project.plugin(llmguard_template)
    llmguard_project.check(
        "quality", uses="template.row_quality", gate={"rows": {"min": 50}, "max_missing_share": {"max": 0.05}}
    )
    return llmguard_project


def make(n: int, missing: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["y"] = (frame.x1 > 0).astype(int)
    frame.loc[frame.sample(frac=missing, random_state=0).index, "x2"] = np.nan
    return frame


def test_clean_data_promotes(llmguard_project) -> None:  # type: ignore[no-untyped-def]
    outcome = project_with(llmguard_project, make(200, 0.0)).run(entry_points=False)
    outcome.assert_decision("PROMOTE")
    assert outcome.results["quality"].metrics["rows"].value == 200
    assert "llmguard_run_check" in outcome.hook_names


def test_missing_values_block(llmguard_project) -> None:  # type: ignore[no-untyped-def]
    outcome = project_with(llmguard_project, make(200, 0.2)).run(entry_points=False)
    outcome.assert_decision("BLOCK")
    assert outcome.results["quality"].metrics["max_missing_share"].value == 0.2
