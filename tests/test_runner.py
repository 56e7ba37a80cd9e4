"""A check that raises, hangs or reports NaN becomes ERROR and BLOCKs; the rest still run."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict
from tests.conftest import BASE_SUITE

from llmguard_ops import (
    CheckContext,
    CheckDefinition,
    CheckOutput,
    CheckSkipped,
    DatasetRef,
    Decision,
    MetricSpec,
    ModelRef,
    Status,
    hookimpl,
    run,
)


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelRef = "candidate"
    dataset: DatasetRef = "current"
    behaviour: str = "ok"


def misbehave(ctx: CheckContext, params: Params) -> CheckOutput:
    pred = ctx.predict(params.model, params.dataset)
    if params.behaviour == "raise":
        raise RuntimeError("the check broke")
    if params.behaviour == "hang":
        time.sleep(30)
    if params.behaviour == "nan":
        return CheckOutput(metrics={"score": {"value": float("nan")}})  # type: ignore[dict-item]
    if params.behaviour == "skip":
        raise CheckSkipped("no CUDA here")
    if params.behaviour == "wrong-type":
        return {"score": 1.0}  # type: ignore[return-value]
    out = CheckOutput()
    accuracy = float((pred == ctx.dataset(params.dataset).y()).mean())
    out.add("score", accuracy, lower=0.5, upper=0.9, confidence=0.9)
    return out


class FaultyPlugin:
    @hookimpl
    def llmguard_register_checks(self, register: Callable[[CheckDefinition], None]) -> None:
        register(CheckDefinition("test.behave", misbehave, Params, (MetricSpec("score"),), "misbehaves on demand"))


def suite_with(write_suite: Callable[[str], Path], behaviours: list[str], extra: str = "") -> Path:
    body = "".join(
        f"  - id: c{i}-{b}\n    uses: test.behave\n    with: {{behaviour: {b}}}\n    timeout: 1.5\n{extra}"
        for i, b in enumerate(behaviours)
    )
    return write_suite(BASE_SUITE + body)


def run_with(path: Path, out: Path, **kw: Any) -> Any:
    return run(path, out, objects=[("faulty", FaultyPlugin())], **kw)


def test_raise_hang_nan_become_errors_and_block(write_suite: Callable[[str], Path], tmp_path: Path) -> None:
    path = suite_with(write_suite, ["ok", "raise", "hang", "nan", "wrong-type", "ok"])
    start = time.perf_counter()
    outcome = run_with(path, tmp_path)
    assert time.perf_counter() - start < 20  # the hang was abandoned at its timeout
    report = outcome.report
    statuses = {c.id: c.status for c in report.checks}
    assert statuses == {
        "c0-ok": Status.PASS,
        "c1-raise": Status.ERROR,
        "c2-hang": Status.ERROR,
        "c3-nan": Status.ERROR,
        "c4-wrong-type": Status.ERROR,
        "c5-ok": Status.PASS,
    }
    assert report.decision.decision is Decision.BLOCK
    raised = report.check("c1-raise").error
    assert raised is not None and raised.type == "RuntimeError" and "the check broke" in raised.message
    assert raised.traceback and "misbehave" in raised.traceback
    assert "timed out after 1.5s" in report.check("c2-hang").error.message  # type: ignore[union-attr]
    assert "not finite" in report.check("c3-nan").error.message  # type: ignore[union-attr]
    assert "returned dict, not CheckOutput" in report.check("c4-wrong-type").error.message  # type: ignore[union-attr]
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["decision"]["decision"] == "BLOCK"
    assert [c["status"] for c in saved["checks"]] == ["pass", "error", "error", "error", "error", "pass"]


def test_allow_error_is_the_explicit_exception(write_suite: Callable[[str], Path], tmp_path: Path) -> None:
    path = suite_with(write_suite, ["ok", "raise"], extra="    allow_error: true\n")
    report = run_with(path, tmp_path).report
    assert report.decision.decision is Decision.PROMOTE
    assert any("allowed by allow_error" in r for r in report.decision.reasons)


def test_skipped_blocker_asks_for_review_by_default(write_suite: Callable[[str], Path], tmp_path: Path) -> None:
    report = run_with(suite_with(write_suite, ["ok", "skip"]), tmp_path).report
    assert report.check("c1-skip").status is Status.SKIP
    assert report.decision.decision is Decision.REVIEW


def test_gate_with_confidence_needs_interval_at_that_level(write_suite: Callable[[str], Path], tmp_path: Path) -> None:
    path = suite_with(write_suite, ["ok"], extra="    gate: {score: {min: 0.4, confidence: 0.95}}\n")
    report = run_with(path, tmp_path).report
    check = report.checks[0]
    assert check.status is Status.ERROR
    assert "asks for a 95% interval but the check reported one at 0.9" in check.error.message  # type: ignore[union-attr]
    path = suite_with(write_suite, ["ok"], extra="    gate: {score: {min: 0.6, confidence: 0.9}}\n")
    check = run_with(path, tmp_path).report.checks[0]
    assert check.status is Status.FAIL  # lower bound 0.5 < 0.6 although the point estimate passes
    assert check.gates[0].tested_low == 0.5


COUNTING_MODEL = """
import joblib
calls = {"predict": 0, "predict_proba": 0}

class Counting:
    def __init__(self, inner):
        self.inner = inner
        self.feature_names_in_ = inner.feature_names_in_
        self.classes_ = inner.classes_
    def predict(self, x):
        calls["predict"] += 1
        return self.inner.predict(x)
    def predict_proba(self, x):
        calls["predict_proba"] += 1
        return self.inner.predict_proba(x)

def make(path):
    return Counting(joblib.load(path))
"""


def test_six_checks_call_predict_once(
    write_suite: Callable[[str], Path], tabular_project: Path, tmp_path: Path
) -> None:
    (tabular_project / "counting_model.py").write_text(COUNTING_MODEL)
    good = tabular_project / "good.joblib"
    suite = BASE_SUITE.replace(
        "candidate: {loader: sklearn, path: good.joblib}",
        f"candidate: {{loader: python, path: counting_model.py:make, options: {{kwargs: {{path: {good}}}}}}}",
    )
    checks = "".join(
        f"  - id: perf{i}\n    uses: performance.classification\n    with: {{n_resamples: 20}}\n" for i in range(3)
    ) + "".join(f"  - id: t{i}\n    uses: test.behave\n" for i in range(3))
    outcome = run_with(write_suite(suite + checks), tmp_path)
    assert [c.status for c in outcome.report.checks] == [Status.PASS] * 6
    module = sys.modules["llmguard_suite_counting_model"]
    assert module.calls == {"predict": 1, "predict_proba": 1}
    assert outcome.report.prediction_calls == {"candidate/current/predict": 1, "candidate/current/predict_proba": 1}


def test_same_seed_same_report_metrics(write_suite: Callable[[str], Path], tmp_path: Path) -> None:
    body = "  - id: q\n    uses: performance.classification\n    with: {baseline: baseline, n_resamples: 200}\n"
    path = write_suite(BASE_SUITE + body)
    first = run(path, tmp_path / "a").report.checks[0]
    second = run(path, tmp_path / "b").report.checks[0]
    assert first.seed == second.seed
    assert first.metrics == second.metrics
    other = run(path, tmp_path / "c", overrides=["seed=99"]).report.checks[0]
    assert other.seed != first.seed
    assert other.metrics["accuracy"].value == first.metrics["accuracy"].value
    assert other.metrics["accuracy"].lower != first.metrics["accuracy"].lower


def test_model_never_sees_sensitive_or_target_columns(tabular_project: Path) -> None:
    import pandas as pd

    from llmguard_ops.artifacts import LoadedDataset, LoadedModel
    from llmguard_ops.suite import DatasetSpec, ModelSpec

    frame = pd.read_csv(tabular_project / "test.csv")
    ds = LoadedDataset("d", DatasetSpec(path="x", target="label", sensitive=["group"]), Path("x"), frame, "0")
    bare = LoadedModel("m", ModelSpec(loader="python"), object(), "0", "x", "python")
    assert bare.feature_names(ds) == ["x1", "x2", "x3", "row_id"]
    ds.spec.features = ["x1", "x2"]
    assert bare.feature_names(ds) == ["x1", "x2"]

    class Declared:
        feature_names_in_ = ["x3", "x1"]

    declared = LoadedModel("m", ModelSpec(loader="python"), Declared(), "0", "x", "python")
    assert declared.feature_names(ds) == ["x3", "x1"]


@pytest.mark.parametrize("behaviour", ["ok"])
def test_report_records_provenance_and_digests(
    write_suite: Callable[[str], Path], tmp_path: Path, behaviour: str, tabular_project: Path
) -> None:
    from llmguard_ops.artifacts import sha256_file

    report = run_with(suite_with(write_suite, [behaviour]), tmp_path).report
    assert report.models["candidate"]["sha256"] == sha256_file(tabular_project / "good.joblib")
    assert report.datasets["current"]["sha256"] == sha256_file(tabular_project / "test.csv")
    assert report.checks[0].plugin == "faulty"
    assert report.plugins["performance"] is not None
    assert report.environment["python"]
    assert report.suite.sha256 and report.run_id
