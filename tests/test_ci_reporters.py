"""junit.xml and summary.md: from a real demo run and from reports with every status.

junitparser (a JUnit reader independent of junit-xml, the writer) is the oracle for
what CI test reporters will count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from llmguard_ops.cli import main
from llmguard_ops.report import Report, SuiteInfo, read_report
from llmguard_ops.reporters.junit import write_junit
from llmguard_ops.reporters.markdown import append_step_summary, cell, render_summary, write_summary
from llmguard_ops.results import CheckResult, Decision, ErrorInfo, GateDecision, GateOutcome, Metric

ROOT = Path(__file__).resolve().parents[1]
# Fewer bootstrap resamples: the same checks and gates, a fraction of the time.
FAST = [f"checks.{c}.with.n_resamples=30" for c in ("quality", "calibration", "vs-champion")]


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def case_properties(case: object) -> dict[str, str]:
    """A testcase's <properties> (junitparser reads them only at suite level)."""
    elem = case._elem  # type: ignore[attr-defined]
    return {p.get("name"): p.get("value") for p in elem.iterfind("properties/property")}


def _result(check_id: str, status: str, severity: str = "blocker", **kw: object) -> CheckResult:
    fields = {
        "id": check_id,
        "uses": "performance.classification",
        "plugin": "performance",
        "severity": severity,
        "status": status,
        "duration_s": 0.25,
        **kw,
    }
    return CheckResult.model_validate(fields)


def _report(checks: list[CheckResult], decision: Decision, reasons: list[str]) -> Report:
    return Report(
        schema="https://llmguard.dev/schemas/report/v1",
        run_id="0123456789abcdef",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:02Z",
        duration_s=2.0,
        suite=SuiteInfo(
            name="release|candidate",
            path="suites/x/suite.yaml",
            sha256="ab" * 32,
            api_version="llmguard/v1",
            seed=0,
        ),
        decision=GateDecision.of(decision, reasons),
        checks=checks,
    )


@pytest.fixture
def mixed_report() -> Report:
    acc = Metric(value=0.62, lower=0.6, upper=0.64, confidence=0.95, n=500)
    gate = GateOutcome(
        metric="accuracy",
        min=0.7,
        confidence=0.95,
        value=0.62,
        tested_low=0.6,
        tested_high=None,
        passed=False,
        reason="accuracy = 0.62 [0.6, 0.64]: lower 95% bound 0.6 < min 0.7",
    )
    ece = Metric(value=0.08)
    warn_gate = GateOutcome(
        metric="ece",
        max=0.05,
        value=0.08,
        tested_low=None,
        tested_high=0.08,
        passed=False,
        reason="ece = 0.08: 0.08 > max 0.05",
    )
    checks = [
        _result(
            "ok",
            "pass",
            metrics={"roc_auc": Metric(value=0.81, lower=0.79, upper=0.83, confidence=0.95)},
        ),
        _result("quality", "fail", metrics={"accuracy": acc, "f1": Metric(value=0.5)}, gates=[gate]),
        _result(
            "calibration",
            "warn",
            severity="warning",
            metrics={"ece": ece},
            gates=[warn_gate],
            warnings=["few rows in the top bin"],
        ),
        _result(
            "crash",
            "error",
            error=ErrorInfo(
                type="ValueError",
                message="bad <input> \x00 here",
                traceback="Traceback ...\nValueError: bad input",
            ),
        ),
        _result("gpu", "skip", error=ErrorInfo(type="Skipped", message="no CUDA device")),
    ]
    return _report(checks, Decision.BLOCK, ["quality (blocker): " + gate.reason, "crash: ERROR: bad input"])


def test_junit_counts_statuses_as_ci_readers_do(tmp_path: Path, mixed_report: Report) -> None:
    (path,) = write_junit(mixed_report, tmp_path)
    xml = JUnitXml.fromfile(str(path))
    (suite,) = list(xml)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (5, 1, 1, 1)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (5, 1, 1, 1)
    cases = {c.name: c for c in suite}
    assert set(cases) == {"ok", "quality", "calibration", "crash", "gpu"}
    assert all(c.classname == "release|candidate" for c in cases.values())
    assert cases["quality"].time == pytest.approx(0.25)

    (failure,) = cases["quality"].result
    assert isinstance(failure, Failure)
    assert "lower 95% bound 0.6 < min 0.7" in failure.message
    (error,) = cases["crash"].result
    assert isinstance(error, Error) and error.type == "ValueError"
    assert "bad <input>" in error.message and "\x00" not in error.message  # XML-safe
    assert "Traceback" in (error.text or "")
    (skipped,) = cases["gpu"].result
    assert isinstance(skipped, Skipped) and skipped.message == "no CUDA device"
    # a failed warning gate passes in JUnit and says so in system-out
    assert cases["calibration"].is_passed
    assert "ece = 0.08: 0.08 > max 0.05" in cases["calibration"].system_out
    assert "few rows in the top bin" in cases["calibration"].system_out

    props = case_properties(cases["quality"])
    assert props["metric.accuracy"] == "0.62"
    assert props["metric.accuracy.lower"] == "0.6" and props["metric.accuracy.confidence"] == "0.95"
    assert props["gate.accuracy"] == "fail" and props["llmguard.severity"] == "blocker"
    suite_props = {p.name: p.value for p in suite.properties()}
    assert suite_props["llmguard.decision"] == "BLOCK"
    assert suite_props["llmguard.reason.1"].startswith("quality (blocker)")


def test_summary_table_puts_gated_metrics_first_and_escapes(mixed_report: Report) -> None:
    text = render_summary(mixed_report, ["report.json", "junit.xml", "summary.md"])
    assert "**BLOCK**" in text and "release\\|candidate" in text
    row = next(line for line in text.splitlines() if line.startswith("| `quality`"))
    assert row.index("**accuracy**") < row.index("**f1**")
    assert "0.62 95% [0.6, 0.64] (min 0.7 @95%) ✗" in row  # one interval format in every report
    crash = next(line for line in text.splitlines() if line.startswith("| `crash`"))
    assert "bad &lt;input&gt;" in crash
    assert "[junit.xml](junit.xml)" in text
    # every table row has the header's number of cells (no stray pipes)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert {line.replace("\\|", "").count("|") for line in rows} == {6}
    assert cell("a|b\nc") == "a\\|b<br>c"


def test_step_summary_is_appended_never_overwritten(
    tmp_path: Path, mixed_report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = tmp_path / "step_summary.md"
    step.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    out = tmp_path / "out"
    write_summary(mixed_report, out)
    write_summary(mixed_report, out)
    text = step.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n")
    assert text.count("llmguard: release") == 2
    assert "[run artifacts](https://github.example/acme/models/actions/runs/77)" in text
    assert "](summary.md)" not in text  # relative links would point nowhere there
    assert (out / "summary.md").read_text(encoding="utf-8").count("llmguard: release") == 1
    assert append_step_summary("x", env={}) is None


def test_cli_run_writes_junit_and_summary_that_agree_with_the_report(tmp_path: Path, demo_dir: Path) -> None:
    out = tmp_path / "out"
    # one blocker gate that cannot hold, one check timing out: BLOCK with a failure and an error
    overrides = [*FAST, "checks.quality.gate.accuracy.min=0.99", "checks.calibration.timeout=0.001"]
    code = main(["run", str(demo_dir / "core.yaml"), "--out", str(out), "-q", *_sets(overrides)])
    assert code == 1
    report = read_report(out / "report.json")
    assert report.decision.decision is Decision.BLOCK
    xml = JUnitXml.fromfile(str(out / "junit.xml"))
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (3, 1, 1, 0)
    (suite,) = list(xml)
    cases = {c.name: c for c in suite}
    assert isinstance(cases["quality"].result[0], Failure)
    assert isinstance(cases["calibration"].result[0], Error)
    assert cases["calibration"].result[0].type == "Timeout"
    props = {k: float(v) for k, v in case_properties(cases["vs-champion"]).items() if k.startswith("metric.")}
    delta = report.check("vs-champion").metrics["roc_auc_delta"]
    assert props["metric.roc_auc_delta"] == delta.value
    assert props["metric.roc_auc_delta.lower"] == delta.lower
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "**BLOCK**" in summary and "[report.json](report.json)" in summary
    assert "Timeout" in summary and "| `quality`" in summary
