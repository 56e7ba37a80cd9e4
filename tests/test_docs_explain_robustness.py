"""The YAML examples of docs/explain.md and docs/robustness.md are real and tested.

The JSON example of a minimal failing example is checked against the check's output in
``test_robustness_perturbation.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
# every YAML example is cut from one of these files, each run by a test
SOURCES = [
    ROOT / "suites" / "demo" / "suite.yaml",
    ROOT / "tests" / "data" / "robustness" / "suite.yaml",
    ROOT / "tests" / "data" / "explain" / "text-suite.yaml",
    ROOT / "tests" / "data" / "explain" / "lime-suite.yaml",
]


def code_blocks(doc: str, lang: str) -> list[str]:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("doc", ["explain.md", "robustness.md"])
def test_yaml_examples_are_cut_from_tested_suites(doc: str) -> None:
    sources = [p.read_text(encoding="utf-8") for p in SOURCES]
    blocks = code_blocks(doc, "yaml")
    assert blocks
    for block in blocks:
        assert any(block in src for src in sources), f"{doc}: example not found in a tested suite:\n{block}"
        assert isinstance(yaml.safe_load(block), list)
