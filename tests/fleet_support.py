"""A small fleet project: generated data, tiny sklearn candidates, a suite and a matrix.

Used by tests/test_fleet.py and benchmarks/fleet.py. Every candidate is a real fitted
model saved with joblib; ``crash`` adds a Python-loader candidate whose load calls
``os._exit`` (a child that dies without a word).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

SUITE = """\
apiVersion: llmguard/v1
name: fleet-unit
seed: 3
models:
  candidate: {loader: sklearn, path: models/m0.joblib}
datasets:
  current: {path: test.csv, target: label}
checks:
  - id: quality
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 40}
    gate: {accuracy: {min: 0.7}}
"""

CRASH_MODEL = """\
import os

def make():
    os._exit(7)
"""


def make_project(root: Path, n_models: int = 3, *, crash: bool = False, rows: int = 300) -> tuple[Path, Path]:
    """Write data, ``n_models`` fitted models (alternately strong and weak), suite.yaml and
    matrix.yaml under ``root``; returns (suite, matrix)."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    root.mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=rows), "x2": rng.normal(size=rows)})
    frame["label"] = (frame.x1 + 0.3 * frame.x2 + rng.normal(scale=0.3, size=rows) > 0).astype(int)
    train, test = frame.iloc[: rows // 2], frame.iloc[rows // 2 :]
    test.to_csv(root / "test.csv", index=False)
    candidates: list[dict[str, Any]] = []
    for i in range(n_models):
        if i % 2 == 0:
            model: Any = LogisticRegression(C=1.0 / (i + 1)).fit(train[["x1", "x2"]], train.label)
        else:  # a stump on the weak feature only: fails the accuracy gate
            model = DecisionTreeClassifier(max_depth=1, random_state=i).fit(train[["x2"]], train.label)
        joblib.dump(model, root / "models" / f"m{i}.joblib")
        candidates.append({"name": f"m{i}", "set": {"models.candidate.path": f"models/m{i}.joblib"}})
    if crash:
        (root / "crash_model.py").write_text(CRASH_MODEL)
        candidates.append(
            {
                "name": "crash",
                "set": {"models.candidate.loader": "python", "models.candidate.path": "crash_model.py:make"},
            }
        )
    suite = root / "suite.yaml"
    suite.write_text(SUITE)
    matrix = root / "matrix.yaml"
    matrix.write_text(yaml.safe_dump({"candidates": candidates}, sort_keys=False))
    return suite, matrix


def llmguard(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``llmguard ARGS`` in a fresh process (the exit status is the point)."""
    env = {**os.environ, "LLMGUARD_HISTORY_DIR": "off"}
    env["PYTHONPATH"] = os.pathsep.join([str(cwd), *sys.path])
    return subprocess.run(
        [sys.executable, "-m", "llmguard_ops.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )
