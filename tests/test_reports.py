"""Reports for people, end to end: two demo runs through the real CLI, then the page, the
model card, the run history and the re-rendering command; and one run of a suite whose
checks use every metric convention the page renders specially.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from llmguard_ops.cli import main
from llmguard_ops.report import read_report

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "demo" / "suite.yaml"
FIXTURE_SUITE = ROOT / "tests" / "data" / "reports_suite.yaml"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DEEPEVAL_TELEMETRY_OPT_OUT": "YES"}


def _demo_overrides() -> list[str]:
    """Fewer bootstrap resamples (speed) and a calibration bound the candidate misses."""
    import yaml

    suite = yaml.safe_load(DEMO.read_text())
    sets = [f"checks.{c['id']}.with.n_resamples=100" for c in suite["checks"] if c["uses"].startswith("performance.")]
    return [*sets, "checks.calibration.gate.ece.max=0.01"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_dir: Path) -> dict[str, Any]:
    """Two runs of the demo suite through the console script, sharing one run history."""
    base = tmp_path_factory.mktemp("demo")
    env = {**os.environ, **OFFLINE, "LLMGUARD_HISTORY_DIR": str(base / ".llmguard" / "runs")}
    llmguard = Path(sys.executable).with_name("llmguard")
    runs = []
    for name in ("run1", "run2"):
        cmd = [str(llmguard), "run", str(demo_dir / "suite.yaml"), "--out", str(base / name)]
        for s in _demo_overrides():
            cmd += ["--set", s]
        proc = subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 3, proc.stdout + proc.stderr  # REVIEW: the calibration warning failed
        runs.append(proc)
    return {
        "base": base,
        "runs": runs,
        "out1": base / "run1",
        "out2": base / "run2",
        "history": base / ".llmguard" / "runs",
    }


class _Page(HTMLParser):
    """Every tag with its attributes, plus the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def svg_images(page: _Page) -> list[ElementTree.Element]:
    out = []
    for tag, attrs in page.tags:
        if tag == "img" and attrs["src"].startswith("data:image/svg+xml;base64,"):
            out.append(ElementTree.fromstring(base64.b64decode(attrs["src"].split(",", 1)[1])))
    return out


def test_plain_output_when_not_a_terminal(demo: dict[str, Any]) -> None:
    out = demo["runs"][0].stdout
    assert "decision: REVIEW" in out and "calibration" in out
    assert "\x1b[" not in out, "no terminal control codes in a pipe"


def test_page_is_self_contained(demo: dict[str, Any]) -> None:
    page = parse(demo["out2"] / "report.html")
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "iframe" not in tags and "object" not in tags
    for tag, attrs in page.tags:
        for name in ("src", "href", "srcset", "data", "action", "poster"):
            if name in attrs:
                value = attrs[name]
                assert value.startswith(("data:", "#")), f"<{tag} {name}={value[:60]}> would fetch something"
        assert not re.search(r"url\(\s*['\"]?(?!data:)", attrs.get("style", ""))
    style = (demo["out2"] / "report.html").read_text().split("<style>")[1].split("</style>")[0]
    assert "@import" not in style and not re.search(r"url\(\s*['\"]?(?!data:)", style)
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_page_shows_decision_failed_gate_plots_and_evidence(demo: dict[str, Any]) -> None:
    report = read_report(demo["out2"] / "report.json")
    html = (demo["out2"] / "report.html").read_text()
    page = parse(demo["out2"] / "report.html")
    assert '<div class="decision">REVIEW</div>' in html
    ece = report.check("calibration").gates[0]
    assert not ece.passed
    failed = html.split("<h3>Failed gates</h3>")[1].split("</table>")[0]
    assert "calibration" in failed and "ece" in failed and "≤ 0.01" in failed
    svgs = svg_images(page)
    gated = sum(len(c.gates) for c in report.checks)
    assert len(svgs) >= 1 + len([c for c in report.checks if c.gates]), "overview plus one per gated check"
    overview = svgs[0]
    labels = "".join(overview.itertext())
    assert "calibration · ece" in labels and gated >= 3
    for c in report.checks:  # every check has its section, every model its digest
        assert f'id="check-{c.id}"' in html
    for m in report.models.values():
        assert m["sha256"] in html
    assert report.suite.sha256 in html
    assert "llmguard verify attestation.dsse.json --key PUBLIC_KEY" in html
    assert report.environment["python"] in html


def test_history_appears_from_the_second_run(demo: dict[str, Any]) -> None:
    assert len(list(demo["history"].glob("*.json"))) == 2
    assert 'id="history"' not in (demo["out1"] / "report.html").read_text()
    second = (demo["out2"] / "report.html").read_text()
    history = second.split('id="history"')[1].split('id="evidence"')[0]
    assert "1 earlier run of this suite" in history and "data:image/svg+xml;base64," in history


def test_model_card(demo: dict[str, Any]) -> None:
    hub = pytest.importorskip("huggingface_hub", reason="huggingface_hub reads the card's model-index")
    report = read_report(demo["out2"] / "report.json")
    text = (demo["out2"] / "model_card.md").read_text()
    card = hub.ModelCard(text)
    results = {(r.task_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results[("quality", "accuracy")] == pytest.approx(report.check("quality").metrics["accuracy"].value)
    assert results[("quality", "roc_auc")] == pytest.approx(report.check("quality").metrics["roc_auc"].value)
    assert not any(t.endswith("_delta") for _, t in results), "deltas compare models; they are not results"
    for heading in (
        "## Model details",
        "## Intended use",
        "## Evaluation data",
        "## Metrics and results",
        "## Fairness",
        "## Explanations",
        "## Bias, risks and limitations",
        "## Evidence",
    ):
        assert heading in text
    assert report.suite.metadata["intended_use"] in text
    assert report.models["candidate"]["sha256"] in text
    assert "| ece | 0.01201 |" in text and "**fail**" in text
    fairness = text.split("## Fairness", 1)[1].split("## Explanations", 1)[0]
    assert "bias.group_fairness" in fairness
    dir_ = report.check("fairness").metrics["attribute.sex.disparate_impact_ratio"].value
    assert f"| attribute.sex.disparate_impact_ratio | {dir_:.4g} |" in fairness
    assert "**REVIEW**" in text


def test_history_command(demo: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--dir", str(demo["history"])]) == 0
    out = capsys.readouterr().out
    assert "suite credit-approval-release: 2 runs" in out
    ece = next(line for line in out.splitlines() if line.startswith("calibration.ece "))
    assert ece.split()[1:3] == ["0.01201!", "0.01201!"], "the failed gate is marked in both runs"
    assert "REVIEW" in out and "quality.accuracy" in out
    assert "column." not in out

    assert main(["history", "--dir", str(demo["history"]), "--metric", "accuracy", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in records} == {
        "quality.accuracy",
        "calibration.accuracy",
        "vs-champion.accuracy",
    }
    assert len(records) == 6

    assert main(["history", "--dir", str(demo["history"]), "--suite", "nope"]) == 0
    assert "no runs of suite 'nope'" in capsys.readouterr().out


def test_history_joins_the_audit_log(demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = read_report(demo["out1"] / "report.json")
    log = tmp_path / "audit.jsonl"
    log.write_text(
        json.dumps(
            {
                "run_id": first.run_id,
                "time": first.finished_at,
                "decision": "REVIEW",
                "suite_sha256": first.suite.sha256,
                "prev": None,
            }
        )
        + "\n"
    )
    assert main(["history", "--dir", str(demo["history"]), "--log", str(log)]) == 0
    audit = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("audit log"))
    assert audit.split()[2:] == ["yes", "-"]


def test_history_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--dir", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run history" in err


def test_report_command_rerenders(demo: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "report",
        str(demo["out2"] / "report.json"),
        "--out",
        str(tmp_path),
        "--history-dir",
        str(demo["history"]),
    ]
    with pytest.MonkeyPatch.context() as mp:  # the command sets the variable for its process
        mp.setenv("LLMGUARD_HISTORY_DIR", "off")
        assert main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_card.md", "report.html"]
    html = (tmp_path / "report.html").read_text()
    assert '<div class="decision">REVIEW</div>' in html and "calibration · ece" not in html  # labels are in SVG
    assert len(svg_images(parse(tmp_path / "report.html"))) == len(svg_images(parse(demo["out2"] / "report.html")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"run_id": 1')
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.json:1:" in err and "not JSON" in err
    bad.write_text('{"run_id": "x"}')
    assert main(["report", str(bad)]) == 2
    assert "not an llmguard report" in capsys.readouterr().err


def test_demo_page_in_headless_chromium(demo: dict[str, Any]) -> None:
    """The page renders in a real browser without console errors or network requests."""
    from _chromium import find_chromium, visit

    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed (CI: apt-get update && apt-get install -y chromium)")
    page = demo["out2"] / "report.html"
    target = Path(os.environ.get("LLMGUARD_SCREENSHOT_DIR", demo["base"]))
    target.mkdir(parents=True, exist_ok=True)
    shot = target / "report-demo.png"
    seen = visit(
        binary,
        page,
        shot,
        expressions={
            "decision": "document.querySelector('.decision').innerText",
            "images": "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length",
            "all_images": "document.images.length",
            "failed_rows": "document.querySelectorAll('table.gates tr.warn, table.gates tr.fail').length",
            "overview_top": "document.querySelector('img.overview').getBoundingClientRect().top",
        },
    )
    assert seen.console_errors == [] and seen.exceptions == [] and seen.log_errors == []
    fetched = [u for u in seen.requests if not u.startswith("data:")]  # inline images decode locally
    assert fetched == [page.resolve().as_uri()], "the page itself, and nothing else"
    assert seen.evaluated["decision"] == "REVIEW"
    assert seen.evaluated["images"] == seen.evaluated["all_images"] > 0, "every plot decodes and renders"
    assert seen.evaluated["failed_rows"] >= 1
    assert seen.evaluated["overview_top"] < 1000, "decision, failed gate and a plot in the first screen"
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory: pytest.TempPathFactory, checkout_copy: Path) -> Any:
    import llmguard_ops

    sys.path.insert(0, str(ROOT / "tests"))
    import reporting_checks

    out = tmp_path_factory.mktemp("fixture")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    mp = pytest.MonkeyPatch()
    mp.setenv("LLMGUARD_HISTORY_DIR", "off")
    try:
        outcome = llmguard_ops.run(
            checkout_copy / FIXTURE_SUITE.relative_to(ROOT), out, objects=[("reporting-checks", reporting_checks)]
        )
    finally:
        mp.undo()
    return outcome


def test_page_renders_each_metric_convention(fixture_run: Any) -> None:
    html = (fixture_run.out_dir / "report.html").read_text()
    for title in (
        "Per column",
        "Per group",
        "Latency percentiles",
        "Feature importance",
        "Candidate - baseline",
        "samples_ms (distribution of 40 samples)",
    ):
        assert f"<h3>{title}</h3>" in html, title
    drift = html.split('id="check-drift"')[1].split("</section>")[0]
    assert "data:image/png;base64," in drift, "the check's own PNG is embedded"
    assert "column.income.statistic" not in drift, "per-column metrics go to their own table"
    assert "sex=female" in html and "the judge model is unreachable" in html
    assert "Waived by jane.doe" in html
    assert "artifacts/drift/income.png" in html.split('id="evidence"')[1]
    page = parse(fixture_run.out_dir / "report.html")
    for svg in svg_images(page):
        assert svg.tag.endswith("svg")


def test_card_fairness_explanations_and_limitations(fixture_run: Any) -> None:
    text = (fixture_run.out_dir / "model_card.md").read_text()
    fairness = text.split("## Fairness")[1].split("## Explanations")[0]
    assert "demographic_parity_difference" in fairness and "| sex=female |" in fairness
    explanations = text.split("## Explanations")[1].split("## Bias, risks")[0]
    assert "| 1 | income |" in explanations
    limits = text.split("## Bias, risks and limitations")[1].split("## Decision")[0]
    assert "Trained on synthetic applications only." in limits
    assert "jane.doe" in limits and "could not run" in limits
    assert "Fully automated decisions without human review." in text
    assert "license: apache-2.0" in text.split("---")[1]


def test_page_without_matplotlib(fixture_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmguard_ops.reporters import plots
    from llmguard_ops.reporters.html import render_html

    monkeypatch.setattr(plots, "available", lambda: False)
    html = render_html(fixture_run.report, fixture_run.out_dir)
    assert "Plots are omitted" in html and "data:image/svg+xml" not in html
    assert "data:image/png;base64," in html, "the check's own images still show"


def test_artifacts_outside_the_output_folder_are_not_read(fixture_run: Any, tmp_path: Path) -> None:
    from llmguard_ops.reporters.view import artifacts_view

    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG not really")
    check = fixture_run.report.check("drift").model_copy(update={"artifacts": {"leak": str(secret)}})
    images, rows = artifacts_view(check, fixture_run.out_dir)
    assert images == [] and "missing" in rows[0][3]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_fixture_page_in_headless_chromium(fixture_run: Any, tmp_path: Path) -> None:
    from _chromium import find_chromium, visit

    page = fixture_run.out_dir / "report.html"
    seen = visit(find_chromium() or "chromium", page, tmp_path / "fixture.png", height=1400)
    assert seen.console_errors == [] and seen.exceptions == [] and seen.log_errors == []
    assert [u for u in seen.requests if not u.startswith("data:")] == [page.resolve().as_uri()]


def test_docs_yaml_examples_are_from_a_tested_suite() -> None:
    """Every YAML block of docs/reports.md is part of the suite the tests above run."""
    import yaml

    docs = (ROOT / "docs" / "reports.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
    suite = FIXTURE_SUITE.read_text()
    assert blocks
    for block in blocks:
        assert block in suite, block
        assert yaml.safe_load(block)
