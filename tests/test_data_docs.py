"""docs/data.md stays true: its YAML is an excerpt of the shipped suite the tests run."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "data.md"
SOURCES = sorted((REPO / "suites" / "data").glob("*.yaml"))


def test_every_parameter_is_documented() -> None:
    from llmguard_checks.data.params import IntegrityParams, QualityParams

    text = DOC.read_text()
    for model in (QualityParams, IntegrityParams):
        for name in model.model_fields:
            assert f"`{name}`" in text, name
