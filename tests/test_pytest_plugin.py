"""The pytest plugin, run in pytest's own ``pytester`` sandbox on the demo suite.

Each run checks what a CI user sees: items named after check ids, ``-k``, the decision
printed at the end and written to the outputs, the exit status agreeing with
``llmguard run``, and junit.xml that a JUnit reader counts correctly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from junitparser import JUnitXml

from llmguard_ops.cli import build_parser, main
from llmguard_ops.options import RUN_OPTIONS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
# Fewer bootstrap resamples: the same checks and gates, a fraction of the time.
FAST = [f"checks.{c}.with.n_resamples=30" for c in ("quality", "calibration", "vs-champion")]


@pytest.fixture(scope="module")
def core(demo_dir: Path) -> Path:
    """The demo's performance gates only: a stable 3-check suite (in the trained copy)."""
    return demo_dir / "core.yaml"


@pytest.fixture(scope="module", autouse=True)
def _warm_imports(tmp_path_factory: pytest.TempPathFactory, core: Path) -> None:
    """Run the demo once in this process first.

    pytester's in-process runs drop the modules they imported afterwards; some compiled
    extensions (scikit-learn, scipy) refuse to be imported a second time. Imported here,
    they stay.
    """
    from llmguard_ops import run

    run(core, tmp_path_factory.mktemp("warm"), overrides=FAST)


def llmguard_args(suite: Path | None, *overrides: str) -> list[str]:
    args = ["-p", "no:cacheprovider"]
    if suite is not None:
        args += ["--llmguard-suite", str(suite)]
    for o in (*FAST, *overrides):
        args += ["--llmguard-set", o]
    return args


def cli_decision(suite: Path, tmp: Path, *overrides: str) -> tuple[int, str]:
    out = tmp / "cli-out"
    code = main(
        [
            "run",
            str(suite),
            "--out",
            str(out),
            "-q",
            *[a for o in (*FAST, *overrides) for a in ("--set", o)],
        ]
    )
    return code, json.loads((out / "report.json").read_text())["decision"]["decision"]


def report_decision(out: Path) -> str:
    data = json.loads((out / "report.json").read_text())
    return str(data["decision"]["decision"])


def test_suite_runs_as_items_with_the_cli_decision(pytester: pytest.Pytester, core: Path) -> None:
    result = pytester.runpytest(*llmguard_args(core), "-v", "--junitxml=pytest-junit.xml")
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*core.yaml::quality PASSED*",
            "*core.yaml::calibration PASSED*",
            "*core.yaml::vs-champion PASSED*",
            "*= llmguard =*",
            "credit-approval-core: PROMOTE (3 of 3 checks ran: 3 pass)",
        ]
    )
    out = pytester.path / "llmguard-out"
    code, decision = cli_decision(core, pytester.path)
    assert (code, decision) == (0, "PROMOTE") and report_decision(out) == "PROMOTE"
    ours = JUnitXml.fromfile(str(out / "junit.xml"))
    assert (ours.tests, ours.failures, ours.errors) == (3, 0, 0)
    # pytest's own junit.xml carries the metrics as testcase properties too
    theirs = JUnitXml.fromfile(str(pytester.path / "pytest-junit.xml"))
    (suite,) = list(theirs)
    case = next(c for c in suite if c.name == "vs-champion")
    names = {p.get("name") for p in case._elem.iterfind("properties/property")}
    assert {"metric.roc_auc_delta", "metric.roc_auc_delta.lower", "gate.roc_auc_delta"} <= names


def test_k_runs_one_check_and_decides_over_it(pytester: pytest.Pytester, core: Path) -> None:
    result = pytester.runpytest(*llmguard_args(core), "-k", "vs-champion")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["credit-approval-core: PROMOTE (1 of 3 checks ran: 1 pass)"])
    report = json.loads((pytester.path / "llmguard-out" / "report.json").read_text())
    assert [c["id"] for c in report["checks"]] == ["vs-champion"]


def test_failed_blocker_fails_the_item_and_blocks_like_the_cli(pytester: pytest.Pytester, core: Path) -> None:
    gate = "checks.quality.gate.accuracy.min=0.99"
    result = pytester.runpytest(*llmguard_args(core, gate), "--junitxml=pytest-junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*quality (performance.classification, blocker): FAIL*",
            "*lower 95% bound * < min 0.99*",
            "credit-approval-core: BLOCK (3 of 3 checks ran: 2 pass, 1 fail)*",
        ]
    )
    code, decision = cli_decision(core, pytester.path, gate)
    assert (code, decision) == (1, "BLOCK") == (result.ret, report_decision(pytester.path / "llmguard-out"))
    for path in (pytester.path / "pytest-junit.xml", pytester.path / "llmguard-out" / "junit.xml"):
        xml = JUnitXml.fromfile(str(path))
        assert (xml.tests, xml.failures, xml.errors) == (3, 1, 0), path


def test_failed_warning_passes_with_a_warning_and_review_fails_the_session(
    pytester: pytest.Pytester, core: Path
) -> None:
    gate = "checks.calibration.gate.ece.max=0.001"
    result = pytester.runpytest(*llmguard_args(core, gate))
    result.assert_outcomes(passed=3, warnings=result.parseoutcomes().get("warnings", 0))
    result.stdout.fnmatch_lines(
        [
            "*LlmguardGateWarning: calibration (warning): ece = *",
            "credit-approval-core: REVIEW*",
            "*REVIEW fails the session*",
        ]
    )
    assert result.ret == 1  # the CLI exits 3: non-zero either way
    code, decision = cli_decision(core, pytester.path, gate)
    assert (code, decision) == (3, "REVIEW")
    relaxed = pytester.runpytest(*llmguard_args(core, gate), "--llmguard-review=pass")
    assert relaxed.ret == 0
    relaxed.stdout.fnmatch_lines(["*REVIEW does not fail the session*"])


def test_check_error_is_a_pytest_error_and_an_allowed_one_xfails(pytester: pytest.Pytester, core: Path) -> None:
    overrides = (
        "checks.calibration.timeout=0.001",
        "checks.calibration.allow_error=true",
        "checks.vs-champion.timeout=0.001",
    )
    result = pytester.runpytest(*llmguard_args(core, *overrides), "-k", "calibration or vs-champion")
    result.assert_outcomes(errors=1, xfailed=1, deselected=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of credit-approval-core::vs-champion*",
            "*Timeout: timed out after 0.001s*",
            "credit-approval-core: BLOCK (2 of 3 checks ran: 2 error)",
        ]
    )
    result.stdout.fnmatch_lines(["  - calibration: ERROR: timed out after 0.001s*(allowed by allow_error)"])


def _copy_demo(pytester: pytest.Pytester, core: Path, name: str) -> Path:
    """The demo suite inside the sandbox, next to links to its models and data."""
    for folder in ("models", "data"):
        (pytester.path / folder).symlink_to(core.parent / folder, target_is_directory=True)
    target = pytester.path / name
    shutil.copy(core, target)
    return target


def test_suite_files_are_collected_by_glob_and_ini(pytester: pytest.Pytester, core: Path) -> None:
    _copy_demo(pytester, core, "llmguard_demo.yaml")
    result = pytester.runpytest(*llmguard_args(None), "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "llmguard_demo.yaml::quality",
            "llmguard_demo.yaml::calibration",
            "llmguard_demo.yaml::vs-champion",
        ]
    )
    # severity markers select checks
    result = pytester.runpytest(*llmguard_args(None), "--collect-only", "-q", "-m", "llmguard_warning")
    result.stdout.fnmatch_lines(["llmguard_demo.yaml::calibration", "*1/3 tests collected (2 deselected)*"])
    (pytester.path / "release.yaml").write_text((pytester.path / "llmguard_demo.yaml").read_text())
    pytester.makeini("[pytest]\nllmguard_files = release*.yaml\n")
    result = pytester.runpytest(*llmguard_args(None), "--collect-only", "-q")
    result.stdout.fnmatch_lines(["release.yaml::quality"])
    assert "llmguard_demo.yaml" not in result.stdout.str()


def test_a_broken_suite_is_a_one_line_collection_error(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "llmguard_bad.yaml"
    bad.write_text("apiVersion: llmguard/v1\nname: bad\nchecks:\n  - id: q\n    uses: performance.clasification\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # 2, as the CLI's exit for a suite error
    assert (
        "llmguard_bad.yaml:5:11 checks[0].uses: unknown check 'performance.clasification' "
        "(did you mean 'performance.classification'?)"
    ) in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_a_model_that_cannot_load_errors_every_item_in_one_line(pytester: pytest.Pytester, core: Path) -> None:
    suite = _copy_demo(pytester, core, "llmguard_demo.yaml")
    (pytester.path / "broken").mkdir()
    (pytester.path / "broken" / "candidate.skops").write_text("not a model")
    suite.write_text(suite.read_text().replace("models/candidate.skops", "broken/candidate.skops"))
    result = pytester.runpytest(*llmguard_args(None))
    result.assert_outcomes(errors=3)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*llmguard_demo.yaml:9:* models.candidate.path: cannot load model: *",
            "credit-approval-core: not run: *llmguard_demo.yaml:9:* cannot load model*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_plugin_is_inert_without_suites_and_fixtures_ask_for_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n\n\ndef test_needs_suite(llmguard_suite):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no llmguard suite: mark the test with @pytest.mark.llmguard_suite*"])
    assert "= llmguard =" not in result.stdout.str()
    assert not (pytester.path / "llmguard-out").exists()


FIXTURE_TESTS = """
import pytest

pytestmark = pytest.mark.llmguard_suite("demo.yaml")


def test_suite_check_with_params(llmguard_check, llmguard_gate):
    result = llmguard_check("quality", n_resamples=30)
    assert result.status.value == "pass"
    llmguard_gate(result)
    llmguard_gate(result, accuracy={"min": 0.7, "confidence": 0.95})


def test_installed_check_inline(llmguard_check, llmguard_gate, llmguard_suite):
    result = llmguard_check("performance.classification", id="champion-quality", model="baseline",
                            dataset="current", n_resamples=30, gate={"accuracy": {"min": 0.99}})
    assert result.status.value == "fail" and result.id == "champion-quality"
    with pytest.raises(AssertionError, match="champion-quality: gate failed: .*< min 0.99"):
        llmguard_gate(result)
    # both checks read the candidate's and the baseline's cached predictions: one model call each
    llmguard_check("quality", n_resamples=30)
    calls = llmguard_suite.session.cache.calls
    assert calls and all(n == 1 for n in calls.values())


def test_bad_params_name_the_key(llmguard_check):
    from llmguard_ops import LlmguardError

    with pytest.raises(LlmguardError, match="unknown model 'candiate'.*did you mean 'candidate'"):
        llmguard_check("performance.classification", model="candiate")
    with pytest.raises(LlmguardError, match="did you mean 'quality'"):
        llmguard_check("qualty")


def test_artifacts_are_reachable(llmguard_suite):
    data = llmguard_suite.dataset("current")
    assert len(data.frame) == 2000
    assert hasattr(llmguard_suite.model("candidate"), "predict_proba")
"""


def test_fixtures_run_inline_checks(pytester: pytest.Pytester, core: Path) -> None:
    _copy_demo(pytester, core, "demo.yaml")
    pytester.makepyfile(test_inline=FIXTURE_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert "= llmguard =" not in result.stdout.str()  # inline checks are tests, not a suite decision


@pytest.mark.slow
def test_xdist_workers_report_to_one_decision(pytester: pytest.Pytester, core: Path) -> None:
    _copy_demo(pytester, core, "demo.yaml")
    pytester.makepyfile(test_inline=FIXTURE_TESTS)
    # (the inline tests run "quality" with the same overrides, so gate another check)
    gate = "checks.vs-champion.gate.roc_auc_delta.min=0.5"
    result = pytester.runpytest(*llmguard_args(pytester.path / "demo.yaml", gate), "test_inline.py", "-n", "2")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["credit-approval-core: BLOCK (3 of 3 checks ran: 2 pass, 1 fail)*"])
    assert result.ret == 1
    assert report_decision(pytester.path / "llmguard-out") == "BLOCK"
    report = json.loads((pytester.path / "llmguard-out" / "report.json").read_text())
    # the workers' model calls reach the controller's report: each worker predicts at most
    # once per (model, dataset, method), and someone did predict
    calls = report["prediction_calls"]
    assert calls and all(1 <= n <= 2 for n in calls.values())


def test_options_are_shared_by_both_shells(pytester: pytest.Pytester) -> None:
    import argparse

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    run_help = sub.choices["run"].format_help()
    top_help = build_parser().format_help()
    result = pytester.runpytest("--help")
    for spec in RUN_OPTIONS:
        cli = spec.cli_flags[0] if spec.cli_flags else f"--{spec.name}"
        assert cli in (run_help + top_help), spec
        result.stdout.fnmatch_lines([f"*{spec.pytest_flag}*"])
    result.stdout.fnmatch_lines(["*--llmguard-suite*", "*llmguard_files*", "*llmguard_review*"])


def test_the_pytest11_module_imports_nothing_heavy() -> None:
    import subprocess
    import sys
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="pytest11") if e.name == "llmguard"]
    assert ep.value == "llmguard_ops.pytest_plugin"
    code = (
        "import sys, llmguard_ops.pytest_plugin; "
        "heavy = ('numpy', 'pandas', 'pydantic', 'scipy', 'yaml', 'llmguard_ops.runner'); "
        "print(sorted(m for m in heavy "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
