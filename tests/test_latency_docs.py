"""docs/latency.md stays true: its YAML is real (tested) suite text, its table is computed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmguard_checks.latency.stats import min_samples, one_sided
from llmguard_ops.loading import load_suite
from llmguard_ops.plugins import get_plugin_manager

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "latency.md"
SUITES = sorted((REPO / "tests" / "data" / "latency").glob("*.yaml"))
SOURCES = [*SUITES, REPO / "suites" / "demo" / "suite.yaml"]


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.name)
def test_example_suites_validate(suite: Path) -> None:
    registry = get_plugin_manager().registry()
    loaded = load_suite(suite, registry)
    assert any(c.uses.startswith("latency.") for c in loaded.suite.checks)


def test_minimum_sample_table_matches_the_rule() -> None:
    rows = re.findall(r"^\| (0\.\d+) \(([\d.]+)\)[^|]*\|(.*)\|$", DOC.read_text(), flags=re.M)
    assert len(rows) == 3
    for confidence, level, cells in rows:
        assert float(level) == pytest.approx(one_sided(float(confidence)))
        numbers = [int(c.strip().replace(",", "")) for c in cells.split("|")]
        expected = [min_samples(q, one_sided(float(confidence))) for q in (0.5, 0.9, 0.95, 0.99, 0.999)]
        assert numbers == expected
