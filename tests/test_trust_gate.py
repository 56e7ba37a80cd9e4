"""Plugins and checks cannot weaken the gate: vetoes see copies and the host recomputes the
decision, checks get copies of the suite, every CheckOutput is validated by the host, and
only a check may skip."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from llmguard_ops import (
    CheckContext,
    CheckDefinition,
    CheckOutput,
    CheckSkipped,
    DatasetRef,
    MetricSpec,
    ModelRef,
    hookimpl,
    run,
)
from llmguard_ops.results import Decision, Metric, Status
from trust_support import project


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelRef = "candidate"
    dataset: DatasetRef = "current"
    trick: str = "none"


def tricky(ctx: CheckContext, params: Params) -> CheckOutput:
    ctx.predict(params.model, params.dataset)
    out = CheckOutput()
    if params.trick == "clear-gate":
        ctx.check.gate.clear()
        for check in ctx.suite.suite.checks:
            check.gate.clear()
        ctx.suite.suite.policy.on_skip = "ignore"
    if params.trick == "inverted":
        out.add("score", 0.2, lower=0.99, upper=0.01, confidence=0.95)
        return out
    if params.trick == "constructed":
        out.metrics["score"] = Metric.model_construct(value="high", lower=None, upper=None)
        return out
    if params.trick == "numpy-details":
        out.details["table"] = np.arange(3)
        out.details["mean"] = np.float32(0.5)
        out.details["nested"] = {1: (np.int64(2), float("nan"))}
    if params.trick == "object-details":
        out.details["model"] = object()
    out.add("score", 0.2)
    return out


class TrickPlugin:
    @hookimpl
    def llmguard_register_checks(self, register: Callable[[CheckDefinition], None]) -> None:
        register(CheckDefinition("trick.check", tricky, Params, (MetricSpec("score"),), "tries tricks"))


class PromotingVeto:
    """Tries every way a veto hook could turn a BLOCK into a PROMOTE."""

    @hookimpl
    def llmguard_gate_veto(self, report: Any) -> list[str]:
        report.decision.decision = Decision.PROMOTE
        report.decision.exit_code = 0
        report.decision.reasons.clear()
        for check in report.checks:
            check.status = Status.PASS
            check.gates.clear()
        return []


class BrokenVeto:
    @hookimpl
    def llmguard_gate_veto(self, report: Any) -> list[str]:
        raise RuntimeError("veto plugin crashed")


def _suite(root: Path, *checks: tuple[str, str], extra: str = "") -> Path:
    suite = project(root)
    body = "".join(
        f"  - id: {cid}\n    uses: trick.check\n    with: {{trick: {trick}}}\n    gate: {{score: {{min: 0.5}}}}\n"
        for cid, trick in checks
    )
    suite.write_text(suite.read_text() + body + extra)
    return suite


def _run(suite: Path, out: Path, *plugins: tuple[str, Any]) -> Any:
    return run(suite, out, objects=[("trick", TrickPlugin()), *plugins])


def test_a_veto_that_rewrites_the_report_changes_nothing(tmp_path: Path) -> None:
    suite = _suite(tmp_path, ("low", "none"))
    outcome = _run(suite, tmp_path / "out", ("promoter", PromotingVeto()))
    assert outcome.report.decision.decision is Decision.BLOCK
    assert outcome.report.check("low").status is Status.FAIL
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["decision"]["decision"] == "BLOCK"


def test_a_veto_that_crashes_blocks(tmp_path: Path) -> None:
    outcome = _run(project(tmp_path), tmp_path / "out", ("broken", BrokenVeto()))
    assert outcome.report.decision.decision is Decision.BLOCK
    assert any("veto plugin crashed" in r for r in outcome.report.decision.reasons)


def test_a_check_cannot_clear_its_gate_or_the_suite(tmp_path: Path) -> None:
    suite = _suite(tmp_path, ("cheat", "clear-gate"), ("next", "none"))
    outcome = _run(suite, tmp_path / "out")
    assert outcome.report.check("cheat").status is Status.FAIL
    assert outcome.report.check("next").status is Status.FAIL
    assert outcome.report.decision.decision is Decision.BLOCK


def test_an_inverted_interval_is_an_error(tmp_path: Path) -> None:
    outcome = _run(_suite(tmp_path, ("inv", "inverted")), tmp_path / "out")
    result = outcome.report.check("inv")
    assert result.status is Status.ERROR and result.error is not None
    assert "lower > upper" in result.error.message
    assert outcome.report.decision.decision is Decision.BLOCK


def test_an_unvalidated_metric_is_an_error(tmp_path: Path) -> None:
    outcome = _run(_suite(tmp_path, ("odd", "constructed")), tmp_path / "out")
    result = outcome.report.check("odd")
    assert result.status is Status.ERROR and result.error is not None
    assert "metric 'score'" in result.error.message


def test_numpy_details_are_converted_and_objects_are_errors(tmp_path: Path) -> None:
    suite = _suite(tmp_path, ("np", "numpy-details"), ("obj", "object-details"))
    outcome = _run(suite, tmp_path / "out")
    converted = outcome.report.check("np").details
    assert converted["table"] == [0, 1, 2] and converted["mean"] == 0.5
    assert converted["nested"] == {"1": [2, None]}
    obj = outcome.report.check("obj")
    assert obj.status is Status.ERROR and obj.error is not None
    assert "details.model: object is not JSON data" in obj.error.message
    # the report was written: nothing crashed at report time
    assert json.loads((tmp_path / "out" / "report.json").read_text())["decision"]["decision"] == "BLOCK"


def test_a_model_raising_check_skipped_cannot_skip_a_blocker(tmp_path: Path) -> None:
    suite = project(
        tmp_path,
        predict="from llmguard_ops import CheckSkipped\nraise CheckSkipped('no GPU, honest')",
        extra="policy: {on_skip: ignore}\n",
    )
    outcome = run(suite, tmp_path / "out")
    result = outcome.report.check("quality")
    assert result.status is Status.ERROR and result.error is not None
    assert result.error.type == "InvalidSkip" and "only a check may skip" in result.error.message
    assert outcome.report.decision.decision is Decision.BLOCK


def test_a_check_may_still_skip_for_its_own_reason(tmp_path: Path) -> None:
    def skipping(ctx: CheckContext, params: Params) -> CheckOutput:
        raise CheckSkipped("needs CUDA")

    class SkipPlugin:
        @hookimpl
        def llmguard_register_checks(self, register: Callable[[CheckDefinition], None]) -> None:
            register(CheckDefinition("trick.skip", skipping, Params, (MetricSpec("score"),), "skips"))

    suite = project(tmp_path)
    suite.write_text(suite.read_text() + "  - id: gpu\n    uses: trick.skip\n")
    outcome = run(suite, tmp_path / "out", objects=[("skip", SkipPlugin())])
    gpu = outcome.report.check("gpu")
    assert gpu.status is Status.SKIP and gpu.error is not None and gpu.error.message == "needs CUDA"
    assert outcome.report.decision.decision is Decision.REVIEW  # on_skip: review (default)
