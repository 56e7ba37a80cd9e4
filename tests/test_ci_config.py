"""tox, pre-commit and scripts/test.sh run what CI runs, with the versions CI pins."""

from __future__ import annotations

import configparser
import re

from tests.conftest import REPO


def _ci_commands(tool: str) -> list[str]:
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    return [line.strip().removeprefix(".venv/bin/") for line in text.splitlines() if f".venv/bin/{tool}" in line]


def _tox() -> configparser.ConfigParser:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(REPO / "tox.ini", encoding="utf-8")
    return tox


def _pin(name: str) -> str:
    text = (REPO / "constraints" / "ci.txt").read_text(encoding="utf-8")
    match = re.search(rf"^{re.escape(name)}==(\S+)$", text, flags=re.M)
    assert match, f"constraints/ci.txt pins no {name}"
    return match.group(1)


def test_tox_lint_runs_the_ruff_commands_of_ci_with_the_pinned_ruff() -> None:
    lint = _tox()["testenv:lint"]
    commands = [c.strip() for c in lint["commands"].strip().splitlines()]
    assert commands == _ci_commands("ruff")
    assert "-c constraints/ci.txt" in lint["deps"]


def test_tox_type_runs_mypy_as_ci_does() -> None:
    assert [c.strip() for c in _tox()["testenv:type"]["commands"].strip().splitlines()] == _ci_commands("mypy")


def test_pre_commit_and_the_dev_extra_use_the_pinned_ruff() -> None:
    ruff = _pin("ruff")
    config = (REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert f"rev: v{ruff}" in config
    assert f'"ruff=={ruff}"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")


def test_tests_run_with_coverage_in_ci_and_tox() -> None:
    script = (REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    assert "pytest --cov " in script and "--cov-report=xml" in script
    assert "pytest --cov " in _tox()["testenv"]["commands"]
    assert _pin("pytest-cov") and _pin("coverage")  # the versions CI installs
