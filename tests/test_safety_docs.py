"""docs/safety.md: its suite example is a real file, and it runs as the page says."""

from __future__ import annotations

from pathlib import Path

import llmguard_ops
from llmguard_ops import Decision

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "suites" / "safety" / "release.yaml"


def test_worked_example_blocks_on_the_paired_delta_only(tmp_path: Path) -> None:
    outcome = llmguard_ops.run(EXAMPLE, tmp_path / "out")
    result = outcome.report.checks[0]
    assert outcome.report.decision.decision is Decision.BLOCK
    assert [g.metric for g in result.failed_gates] == ["attack_success_rate_delta"]
    asr = result.metrics["attack_success_rate"]
    assert (round(asr.value * asr.n), asr.n) == (2, 104) and round(asr.upper or 1, 3) == 0.068
    doc = (REPO / "docs" / "safety.md").read_text()
    assert outcome.report.decision.reasons[0].split(": ", 1)[1].replace(" ", "") in doc.replace(" ", "").replace(
        "\n", ""
    )
