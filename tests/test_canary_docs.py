"""Every YAML example in docs/canary.md and docs/generation.md is a real, valid file."""

from __future__ import annotations

from pathlib import Path

import yaml

import llmguard_ops
from llmguard_ops import Decision, Status

REPO = Path(__file__).resolve().parents[1]


def test_local_judge_example_is_a_valid_suite() -> None:
    """The real-judge suite needs a multi-GB judge folder; its structure and check
    parameters are validated here (the plumbing runs in test_generation.py)."""
    from llmguard_checks.generation import GenerationParams
    from llmguard_ops.suite import Suite

    data = yaml.safe_load((REPO / "tests" / "data" / "generation_local_judge.yaml").read_text())
    suite = Suite.model_validate(data)
    ctx = {"models": set(suite.models), "datasets": set(suite.datasets)}
    for check in suite.checks:
        params = GenerationParams.model_validate(check.with_, context=ctx)
        assert params.judge == "judge" and params.judge_repeats == 3


def test_canary_example_suite_runs(tmp_path: Path, checkout_copy: Path) -> None:
    outcome = llmguard_ops.run(checkout_copy / "suites" / "canary" / "suite.yaml", tmp_path / "out")
    checks = {c.id: c for c in outcome.report.checks}
    assert checks["non-inferiority"].status is Status.PASS, checks["non-inferiority"].error
    assert checks["superiority"].status is Status.PASS
    assert checks["equivalence"].status is Status.WARN  # better by ~2.5 points: not within ±2
    assert outcome.report.decision.decision is Decision.PROMOTE
    assert checks["non-inferiority"].details["replay"]["stages"][-1]["information"] == 1.0
