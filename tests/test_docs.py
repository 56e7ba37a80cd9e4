"""Docs are tested: hook reference in sync, every YAML example valid, every suite runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.conftest import REPO

from llmguard_ops.artifacts import check_model_paths, load_datasets
from llmguard_ops.loading import load_suite
from llmguard_ops.plugins import get_plugin_manager

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
BLOCK = re.compile(r"```ya?ml\n(.*?)```", re.S)


def yaml_blocks() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for i, block in enumerate(BLOCK.findall(doc.read_text(encoding="utf-8"))):
            out.append((f"{doc.relative_to(REPO)}#{i}", block))
    return out


def test_hook_reference_is_in_sync_with_hookspecs() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "hook_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("where", "text"), yaml_blocks(), ids=[w for w, _ in yaml_blocks()])
def test_yaml_examples_are_valid(where: str, text: str, demo_models: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(text)
    if not (isinstance(data, dict) and data.get("apiVersion") == "llmguard/v1"):
        return  # a fragment (a gate, a waiver list, a CI config): parsing is its test
    # full suites in the docs use paths relative to suites/examples/
    path = REPO / "suites" / "examples" / f".doc-{tmp_path.name}.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        registry = get_plugin_manager().registry()
        loaded = load_suite(path, registry)
        load_datasets(loaded, registry)
        check_model_paths(loaded, registry)
    finally:
        path.unlink()


def test_readme_suite_is_the_shipped_quickstart() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quickstart = (REPO / "suites" / "examples" / "quickstart.yaml").read_text(encoding="utf-8")
    assert quickstart in [b for b in BLOCK.findall(readme)]


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
def test_every_shipped_suite_validates(suite: Path, demo_models: Path) -> None:
    registry = get_plugin_manager().registry()
    loaded = load_suite(suite, registry)
    load_datasets(loaded, registry)
    check_model_paths(loaded, registry)


def test_quickstart_runs_and_promotes(demo_models: Path, tmp_path: Path) -> None:
    import llmguard_ops

    outcome = llmguard_ops.run(REPO / "suites" / "examples" / "quickstart.yaml", tmp_path)
    assert outcome.report.decision.decision is llmguard_ops.Decision.PROMOTE


PY_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks() -> list[tuple[str, str]]:
    return [
        (f"{doc.relative_to(REPO)}#{i}", block)
        for doc in DOCS
        for i, block in enumerate(PY_BLOCK.findall(doc.read_text(encoding="utf-8")))
    ]


@pytest.mark.parametrize(("where", "code"), python_blocks(), ids=[w for w, _ in python_blocks()])
def test_python_examples_compile(where: str, code: str) -> None:
    compile(code, where, "exec")


def test_plugin_guide_example_check_runs(tabular_project: Path, tmp_path: Path) -> None:
    import types

    import llmguard_ops

    code = PY_BLOCK.findall((REPO / "docs" / "plugin-guide.md").read_text(encoding="utf-8"))[0]
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
