"""Generated malformed suites: ``llmguard validate`` exits 0 or 2, never a traceback, and
every error names ``file:line:col`` (benchmarks/fuzz_suites.py runs 10,000 of these)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz_support import VALID, build_project, run_validate, text_mutation, tree_mutation


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_project(tmp_path_factory.mktemp("fuzz"))


def test_the_unmutated_suite_is_valid(project: Path) -> None:
    suite = project / "valid.yaml"
    suite.write_text(yaml.safe_dump(VALID, sort_keys=False), encoding="utf-8")
    outcome = run_validate(suite)
    assert outcome.traceback is None and outcome.code == 0, outcome.stderr


_SUITES = st.one_of(tree_mutation().map(lambda t: yaml.safe_dump(t, sort_keys=False).encode()), text_mutation())


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(data=_SUITES)
def test_generated_suites_exit_0_or_2_with_located_errors(project: Path, data: bytes) -> None:
    suite = project / "suite.yaml"
    suite.write_bytes(data)
    outcome = run_validate(suite)
    assert outcome.traceback is None, outcome.traceback
    assert outcome.code in (0, 2), outcome.stderr
    assert not outcome.unlocated, outcome.stderr
