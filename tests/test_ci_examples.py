"""The CI examples in docs/examples/ are real, parse, and call what the CLI really has.

docs/ci.md shows them verbatim (test_docs_examples.py); a command the CLI or the pytest plugin does not accept,
a suite path that does not exist, or an uploaded path that misses the outputs fails here.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmguard_ops.cli import build_parser
from llmguard_ops.options import RUN_OPTIONS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
PYTEST_FLAGS = {"--llmguard-suite", "--llmguard-review", *(s.pytest_flag for s in RUN_OPTIONS)}


def _commands(lines: list[str]) -> Iterator[list[str]]:
    for block in lines:
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                yield shlex.split(line)


def github_commands(doc: dict[str, Any]) -> list[list[str]]:
    runs = [step["run"] for job in doc["jobs"].values() for step in job["steps"] if "run" in step]
    return list(_commands(runs))


def gitlab_commands(doc: dict[str, Any]) -> list[list[str]]:
    scripts = [line for job in doc.values() if isinstance(job, dict) for line in job.get("script", [])]
    return list(_commands(scripts))


def check_command(argv: list[str]) -> str | None:
    """Parse one shell command as its program would; return the llmguard output folder if any."""
    if argv[0] == "llmguard":
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit as exc:  # argparse's way of refusing
            raise AssertionError(f"llmguard refuses {shlex.join(argv)}") from exc
        if hasattr(args, "suite"):
            assert (ROOT / args.suite).is_file(), args.suite
        return getattr(args, "out", None)
    if argv[0] == "pytest":
        flags = [a.split("=", 1)[0] for a in argv if a.startswith("--llmguard")]
        assert set(flags) <= PYTEST_FLAGS, set(flags) - PYTEST_FLAGS
        if "--llmguard-suite" in argv:
            assert (ROOT / argv[argv.index("--llmguard-suite") + 1]).is_file()
        if "--llmguard-out" in argv:
            return argv[argv.index("--llmguard-out") + 1]
    return None


def test_github_actions_example() -> None:
    doc = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    assert doc["jobs"] and (True in doc or "on" in doc)  # YAML 1.1 reads the key `on` as true
    commands = github_commands(doc)
    assert any(c[:2] == ["llmguard", "run"] for c in commands)
    assert any(c[:2] == ["llmguard", "validate"] for c in commands)
    outs = {out for c in commands if (out := check_command(c))}
    assert outs == {"llmguard-out"}
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert uploads and all(s.get("if") == "always()" for s in uploads)  # evidence of a BLOCK too
    assert all("llmguard-out/" in s["with"]["path"] for s in uploads)
    junit = [s for s in steps if "report_paths" in s.get("with", {})]
    assert [s["with"]["report_paths"] for s in junit] == ["llmguard-out/junit.xml"]


def test_gitlab_ci_example() -> None:
    doc = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    job = doc["model-gate"]
    commands = gitlab_commands(doc)
    assert any(c[:2] == ["llmguard", "run"] for c in commands)
    outs = {out for c in commands if (out := check_command(c))}
    assert outs == {"llmguard-out"}
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"] == "llmguard-out/junit.xml"
    assert "llmguard-out/" in job["artifacts"]["paths"]
    assert job["allow_failure"]["exit_codes"] == [3]  # REVIEW, by the CLI's exit status contract


def test_a_wrong_command_would_be_caught() -> None:
    with pytest.raises(AssertionError, match="llmguard refuses"):
        check_command(["llmguard", "run", "suites/demo/suite.yaml", "--output", "x"])
    with pytest.raises(AssertionError):
        check_command(["pytest", "--llmguard-outdir", "x"])


def test_python_example_runs_and_is_shown(pytester: pytest.Pytester, tmp_path: Path, checkout_copy: Path) -> None:
    from llmguard_ops import run

    # import the check's compiled dependencies here first: pytester's in-process run drops
    # the modules it imported, and some extensions cannot be imported twice
    run(
        checkout_copy / "suites" / "demo" / "suite.yaml",
        tmp_path,
        overrides=["checks.quality.with.n_resamples=30"],
        only=["quality"],
        write=False,
    )
    example = EXAMPLES / "test_model_gate.py"
    target = pytester.path / "docs" / "examples"
    target.mkdir(parents=True)
    (target / example.name).write_text(example.read_text(encoding="utf-8"), encoding="utf-8")
    (pytester.path / "suites").symlink_to(checkout_copy / "suites", target_is_directory=True)
    result = pytester.runpytest("-p", "no:cacheprovider", "docs/examples/test_model_gate.py")
    result.assert_outcomes(passed=2)  # (docs/ci.md shows it verbatim: test_docs_examples.py)
