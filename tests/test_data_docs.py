"""docs/data.md stays true: its YAML is an excerpt of the shipped suite the tests run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "data.md"
SOURCES = sorted((REPO / "suites" / "data").glob("*.yaml"))


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_doc_has_examples() -> None:
    assert _yaml_blocks()


@pytest.mark.parametrize("block", _yaml_blocks())
def test_every_yaml_example_is_an_excerpt_of_a_tested_suite(block: str) -> None:
    assert any(block in p.read_text() for p in SOURCES), f"not found in suites/data:\n{block}"


def test_every_parameter_is_documented() -> None:
    from llmguard_checks.data.params import IntegrityParams, QualityParams

    text = DOC.read_text()
    for model in (QualityParams, IntegrityParams):
        for name in model.model_fields:
            assert f"`{name}`" in text, name
