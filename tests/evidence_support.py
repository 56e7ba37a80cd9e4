"""Helpers shared by the evidence tests: a tiny real project and an in-process CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from llmguard_ops.testing import write_suite

SUITE = """\
apiVersion: llmguard/v1
name: evidence-unit
seed: 11
models:
  candidate: {{loader: sklearn, path: {model}}}
datasets:
  current: {{path: {data}, target: label, sensitive: [group]}}
checks:
  - id: quality
    uses: performance.classification
    with: {{model: candidate, dataset: current, n_resamples: 30}}
    gate: {{accuracy: {{min: {minimum}}}}}
    severity: blocker
{extra}"""


@dataclass
class Project:
    """A fitted model, its data and a key pair in one folder."""

    root: Path
    model: Path
    data: Path
    private_key: Path
    public_key: Path

    def suite(
        self,
        name: str = "suite.yaml",
        minimum: float = 0.7,
        extra: str = "",
        folder: Path | None = None,
    ) -> Path:
        """Write a suite using this project's model and data; ``extra`` is appended as is."""
        text = SUITE.format(model=self.model, data=self.data, minimum=minimum, extra=extra)
        return write_suite(folder or self.root, text, name=name)


def make_project(root: Path) -> Project:
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from llmguard_ops.evidence.keys import generate

    rng = np.random.default_rng(3)
    n = 240
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "group": rng.choice(["a", "b"], size=n),
        }
    )
    frame["label"] = (frame.x1 - 0.5 * frame.x2 + 0.4 * rng.normal(size=n) > 0).astype(int)
    data = root / "data.csv"
    frame.to_csv(data, index=False)
    model = root / "model.joblib"
    joblib.dump(LogisticRegression().fit(frame[["x1", "x2"]], frame.label), model)
    private, public, _ = generate(root / "keys")
    return Project(root=root, model=model, data=data, private_key=private, public_key=public)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> CliResult:
    """Run ``llmguard ARGV`` in this process; returns exit code, stdout and stderr."""
    import warnings

    from llmguard_ops.cli import main

    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the pickle warning of the sklearn loader
        code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)
