"""Checks written in Python next to a YAML suite (see docs/ci.md, "Fixtures")."""

import pytest

pytestmark = pytest.mark.llmguard_suite("../../suites/demo/suite.yaml")


def test_candidate_beats_a_floor(llmguard_check, llmguard_gate):
    result = llmguard_check("quality")
    llmguard_gate(result, accuracy={"min": 0.7, "confidence": 0.95})


def test_champion_on_current_data(llmguard_check):
    result = llmguard_check(
        "performance.classification",
        id="champion",
        model="baseline",
        dataset="current",
        gate={"roc_auc": {"min": 0.7}},
    )
    assert result.status.value == "pass"
