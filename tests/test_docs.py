"""Docs are tested: hook reference in sync, every shipped suite valid, the guide's check runs.

The docs' code examples are checked in test_docs_examples.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.docs_support import REPO, code_blocks

from llmguard_ops.artifacts import check_model_paths, load_datasets
from llmguard_ops.loading import load_suite
from llmguard_ops.plugins import get_plugin_manager


def test_hook_reference_is_in_sync_with_hookspecs() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "hook_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# suites/llm/release.yaml needs the two causal LMs that suites/llm/train_models.py trains (about
# a minute): tests/test_llm_suite.py builds them into a temporary folder and validates and runs it.
LLM_RELEASE = REPO / "suites" / "llm" / "release.yaml"
# suites/scale/partitioned.yaml reads the partitions suites/scale/make_data.py writes:
# tests/test_partitioned_data.py generates them into a temporary folder and runs it.
SCALE = REPO / "suites" / "scale" / "partitioned.yaml"
SUITES = sorted(
    p for p in (REPO / "suites").glob("**/*.yaml") if not p.name.startswith(".") and p not in (LLM_RELEASE, SCALE)
)


@pytest.mark.parametrize("suite", SUITES, ids=[str(p.relative_to(REPO)) for p in SUITES])
def test_every_shipped_suite_validates(suite: Path, checkout_copy: Path) -> None:
    registry = get_plugin_manager().registry()
    loaded = load_suite(checkout_copy / suite.relative_to(REPO), registry)
    load_datasets(loaded, registry)
    check_model_paths(loaded, registry)


def test_quickstart_runs_and_promotes(checkout_copy: Path, tmp_path: Path) -> None:
    import llmguard_ops

    outcome = llmguard_ops.run(checkout_copy / "suites" / "examples" / "quickstart.yaml", tmp_path)
    assert outcome.report.decision.decision is llmguard_ops.Decision.PROMOTE


def test_plugin_guide_example_check_runs(tabular_project: Path, tmp_path: Path) -> None:
    import types

    import llmguard_ops

    code = code_blocks(REPO / "docs" / "plugin-guide.md", "python")[0].text
    module = types.ModuleType("guide_example")
    sys.modules["guide_example"] = module  # pydantic resolves annotations through the module
    exec(compile(code, "plugin-guide.md", "exec"), module.__dict__)
    suite = tabular_project / "guide.yaml"
    suite.write_text(
        "apiVersion: llmguard/v1\nname: guide\nmodels:\n  candidate: {loader: sklearn, path: good.joblib}\n"
        "datasets:\n  current: {path: test.csv, target: label}\nchecks:\n"
        "  - id: rate\n    uses: mine.positive_rate\n    gate: {positive_rate: {max: 0.9}}\n"
    )
    outcome = llmguard_ops.run(suite, tmp_path, objects=[("mine", module)])
    rate = outcome.report.check("rate").metrics["positive_rate"].value
    assert 0.1 < rate < 0.9
    assert outcome.report.decision.decision is llmguard_ops.Decision.PROMOTE
