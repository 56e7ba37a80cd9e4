"""The examples of docs/bias.md are real suites, and they run."""

from __future__ import annotations

from pathlib import Path

import llmguard_ops
from llmguard_ops import Status

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "bias"
DEMO = ROOT / "suites" / "demo"


def test_scored_llm_outputs_example_blocks_on_the_planted_dialect_gap(tmp_path: Path) -> None:
    outcome = llmguard_ops.run(DATA / "llm_scores.yaml", tmp_path)
    result = outcome.report.checks[0]
    assert outcome.report.decision.decision.value == "BLOCK"
    assert result.status is Status.FAIL
    failed = {g.metric for g in result.failed_gates}
    assert "attribute.dialect.equalized_odds_difference" in failed
    advice = result.details["mitigation"]
    assert advice["suggested_constraint"] == "equalized_odds"
    assert any("CalibratedEqualizedOdds" in option for option in advice["options"])
    # gender carries no planted gap
    assert result.metrics["attribute.gender.equalized_odds_difference"].value < 0.1


def test_demo_fairness_check_passes_with_intervals(tmp_path: Path, demo_dir: Path) -> None:
    outcome = llmguard_ops.run(demo_dir / "suite.yaml", tmp_path, only=["fairness"])
    result = outcome.report.checks[0]
    assert result.status is Status.PASS, result.error or result.failed_gates
    assert outcome.report.decision.decision.value in ("PROMOTE", "REVIEW")
    dp = result.metrics["attribute.sex.demographic_parity_difference"]
    assert dp.confidence == 0.95 and dp.lower is not None and dp.upper is not None
    assert (tmp_path / result.artifacts["group_rates"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    mitigation = result.details["mitigation"]
    assert mitigation["threshold_optimizer"]["constraint"] == "true_positive_rate_parity"
    assert any(p["feature"] == "income" and p["sensitive"] == "sex" for p in mitigation["proxies"])
