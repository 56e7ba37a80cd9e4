"""Every code example in the README and docs/ is real: valid, and cut from a file the tests run.

One table says, page by page, where its examples come from:

* ``excerpt``: each block is part of one of the source files (a suite the tests run);
* ``exact``: the blocks are the source files' texts, in order;
* ``shown``: each source file appears, verbatim, as one of the blocks.

Independently of the table, every YAML block parses (a full suite also loads, its data and
model paths resolved from suites/examples/) and every Python block compiles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from tests.docs_support import DOCS, REPO, CodeBlock, code_blocks

from llmguard_ops.artifacts import check_model_paths, load_datasets
from llmguard_ops.loading import load_suite
from llmguard_ops.plugins import get_plugin_manager

YAML = ("yaml", "yml")


@dataclass(frozen=True)
class Examples:
    doc: str
    kind: str  # excerpt | exact | shown
    sources: tuple[str, ...]  # globs under the repository
    langs: tuple[str, ...] = ("yaml",)
    section: str | None = None
    at_least: int = 1

    @property
    def id(self) -> str:
        return f"{self.doc}{'#' + self.section if self.section else ''}:{'/'.join(self.langs)}"

    def files(self) -> list[Path]:
        found = [p for pattern in self.sources for p in sorted(REPO.glob(pattern))]
        assert found, f"{self.id}: no file matches {self.sources}"
        return found


EXPLAIN_SOURCES = (
    "suites/demo/suite.yaml",
    "tests/data/robustness/suite.yaml",
    "tests/data/explain/text-suite.yaml",
    "tests/data/explain/lime-suite.yaml",
)
EXAMPLES = [
    Examples("README.md", "shown", ("suites/examples/quickstart.yaml",), langs=YAML),
    Examples("docs/bias.md", "excerpt", ("suites/demo/suite.yaml", "tests/data/bias/*.yaml"), at_least=3),
    Examples("docs/canary.md", "excerpt", ("suites/**/*.yaml", "tests/data/*.yaml")),
    Examples("docs/generation.md", "excerpt", ("suites/**/*.yaml", "tests/data/*.yaml")),
    Examples("docs/data.md", "excerpt", ("suites/data/*.yaml",)),
    Examples("docs/latency.md", "excerpt", ("tests/data/latency/*.yaml", "suites/demo/suite.yaml")),
    Examples("docs/explain.md", "excerpt", EXPLAIN_SOURCES),
    Examples("docs/robustness.md", "excerpt", EXPLAIN_SOURCES),
    Examples("docs/safety.md", "exact", ("suites/safety/release.yaml",)),
    Examples("docs/evidence.md", "exact", ("tests/data/evidence/waivers.yaml",)),
    Examples(
        "docs/evidence.md",
        "exact",
        ("tests/data/evidence/approvals/policy.yaml", "tests/data/evidence/approvals/trust.yaml"),
        langs=("yml",),
        section="Approvals",
    ),
    Examples("docs/evidence.md", "shown", ("tests/data/evidence/verify_openssl.sh",), langs=("bash",)),
    Examples("docs/ci.md", "shown", ("docs/examples/github-actions.yml", "docs/examples/gitlab-ci.yml")),
    Examples("docs/ci.md", "shown", ("docs/examples/test_model_gate.py",), langs=("python",)),
]


@pytest.mark.parametrize("examples", EXAMPLES, ids=lambda e: e.id)
def test_examples_come_from_tested_files(examples: Examples) -> None:
    blocks = code_blocks(REPO / examples.doc, *examples.langs, section=examples.section)
    assert len(blocks) >= examples.at_least, f"{examples.id}: {len(blocks)} examples, expected {examples.at_least}+"
    sources = {p: p.read_text(encoding="utf-8") for p in examples.files()}
    if examples.kind == "exact":
        assert [b.text for b in blocks] == list(sources.values()), f"{examples.id}: not the files {examples.sources}"
    elif examples.kind == "shown":
        shown = [b.text for b in blocks]
        missing = [str(p.relative_to(REPO)) for p, text in sources.items() if text not in shown]
        assert not missing, f"{examples.doc} does not show these files as they are: {missing}"
    else:
        assert examples.kind == "excerpt", examples.kind
        stray = [b for b in blocks if not any(b.text in text for text in sources.values())]
        assert not stray, "examples not cut from a tested file:\n" + "\n".join(f"{b.where}:\n{b.text}" for b in stray)


def _blocks(*langs: str) -> list[CodeBlock]:
    return [b for doc in DOCS for b in code_blocks(doc, *langs)]


@pytest.mark.parametrize("block", _blocks(*YAML), ids=lambda b: b.where)
def test_yaml_example_is_valid(block: CodeBlock, checkout_copy: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(block.text)
    if not (isinstance(data, dict) and data.get("apiVersion") == "llmguard/v1"):
        return  # a fragment (a gate, a waiver list, a CI config): parsing is its test
    # full suites in the docs use paths relative to suites/examples/ (in the trained copy)
    path = checkout_copy / "suites" / "examples" / f".doc-{tmp_path.name}.yaml"
    path.write_text(block.text, encoding="utf-8")
    registry = get_plugin_manager().registry()
    loaded = load_suite(path, registry)
    load_datasets(loaded, registry)
    check_model_paths(loaded, registry)


@pytest.mark.parametrize("block", _blocks("python", "py"), ids=lambda b: b.where)
def test_python_example_compiles(block: CodeBlock) -> None:
    compile(block.text, block.where, "exec")


@pytest.mark.parametrize("doc", ["docs/explain.md", "docs/robustness.md"])
def test_explain_and_robustness_examples_are_check_lists(doc: str) -> None:
    for block in code_blocks(REPO / doc, "yaml"):
        assert isinstance(yaml.safe_load(block.text), list), block.where


def _drift_blocks() -> list[CodeBlock]:
    return code_blocks(REPO / "docs" / "drift.md", "yaml")


def test_drift_examples_each_name_their_suite() -> None:
    blocks = _drift_blocks()
    assert len(blocks) >= 2
    assert all(b.text.startswith("# ") for b in blocks), [b.where for b in blocks if not b.text.startswith("# ")]


@pytest.mark.parametrize("block", _drift_blocks(), ids=lambda b: b.where)
def test_drift_example_is_in_the_suite_it_names_and_that_suite_loads(block: CodeBlock) -> None:
    header, snippet = block.text.split("\n", 1)
    suite = REPO / header.removeprefix("# ").strip()
    assert snippet in suite.read_text(encoding="utf-8"), f"{block.where}: snippet drifted from {suite}"
    load_suite(suite, get_plugin_manager().registry())
