"""Every YAML example in docs/drift.md is part of a real suite file that validates (and runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmguard_ops
from llmguard_ops.plugins import get_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "drift.md"


def test_tabular_example_runs_and_asks_for_review(tmp_path: Path, checkout_copy: Path) -> None:
    with pytest.warns(UserWarning):  # pickled demo model
        outcome = llmguard_ops.run(checkout_copy / "tests/data/drift/tabular.yaml", tmp_path, write=False)
    result = outcome.report.checks[0]
    assert result.error is None
    assert result.metrics["column.income.drifted"].value == 1.0
    assert {r["column"]: r["method"] for r in result.details["columns"]}["num_accounts"] == "psi"
    assert outcome.report.decision.decision.value == "REVIEW"


def test_checks_are_listed_and_import_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, llmguard_checks.drift as d; "
        "heavy = [m for m in ('scipy', 'pandas', 'sklearn', 'torch', 'sentence_transformers', "
        "'transformers') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    names = get_plugin_manager().registry().checks
    assert names["drift.tabular"].plugin == "drift" and "drift.embedding" in names
