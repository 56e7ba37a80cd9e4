"""compliance.md: the run's evidence mapped to EU AI Act Annex IV, NIST AI RMF, ISO/IEC 42001."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from evidence_support import Project, make_project
from llmguard_ops.reporters.compliance import assess, mapping

WITH_ALL = """\
  - id: fairness
    uses: bias.group_fairness
    with: {model: candidate, dataset: current, sensitive: [group]}
    gate: {demographic_parity_difference: {max: 0.9}}
    severity: warning
  - id: noise
    uses: robustness.perturbation
    with: {model: candidate, dataset: current}
    severity: warning
policy:
  approvals: {required: 2, roles: [ml-lead, risk]}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("compliance"))


def _run(project: Project, extra: str, name: str, signed: bool = True) -> Path:
    from llmguard_ops.cli import main

    out = project.root / name
    key = ["--key", str(project.private_key)] if signed else []
    code = main(["run", str(project.suite(name=f"{name}.yaml", extra=extra)), "--out", str(out),
                 *key, "--no-audit-log", "--quiet"])  # fmt: skip
    assert code in (0, 3), code
    return out


def _rows(text: str) -> dict[str, str]:
    """Item ref → its table row."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| ((?:Annex IV|MEASURE|A\.)[^:]*):", line)
        if m:
            rows[m.group(1).replace("\\", "")] = line
    return rows


def _status(row: str) -> str:
    return row.split(" | ")[1].strip("*")


def test_mapping_names_each_framework_item_once() -> None:
    refs = [item["ref"] for fw in mapping() for item in fw["items"]]
    assert len(refs) == len(set(refs))
    for ref in ["Annex IV 2(b)", "Annex IV 2(g)", "Annex IV 3", "MEASURE 2.1", "MEASURE 2.11",
                "A.6.2.4", "A.6.2.8", "A.7.4", "A.5.2"]:  # fmt: skip
        assert ref in refs


def test_bias_performance_and_robustness_run_is_covered(project: Project) -> None:
    out = _run(project, WITH_ALL, "all")
    text = (out / "compliance.md").read_text()
    rows = _rows(text)
    assert _status(rows["MEASURE 2.11"]) == "covered"
    assert "`fairness` (bias.group_fairness: " in rows["MEASURE 2.11"]
    assert _status(rows["MEASURE 2.3"]) == "covered"
    assert _status(rows["Annex IV 3"]) == "covered"
    assert _status(rows["A.5.4"]) == "covered"
    assert _status(rows["A.6.2.4"]) == "covered"
    # 2(g): accuracy, robustness, discrimination, data, signature, Test Result, approvals
    assert _status(rows["Annex IV 2(g)"]) == "covered"
    assert "`noise` (robustness.perturbation: " in rows["Annex IV 2(g)"]
    # an impact assessment is never claimed by a run
    assert _status(rows["A.5.2"]) == "needs a person"
    # the evidence list: the signed attestation, the Test Result and the approval policy
    assert "`attestation.dsse.json` | signed (ed25519), keyid `" in text
    assert "`test-result.dsse.json` | signed with the run's key" in text
    assert "2 approvals from `ml-lead`, `risk`; two-person rule on" in text
    assert "for a REVIEW; this PROMOTE needs none" in rows["Annex IV 2(g)"]
    assert _status(rows["MEASURE 2.1"]) == "covered" and "plugins with their versions" in rows["MEASURE 2.1"]
    # the HTML page lists the compliance page among the run's files
    assert "compliance.md" in (out / "report.html").read_text()


def test_a_run_without_bias_says_fairness_is_not_covered(project: Project) -> None:
    out = _run(project, "", "plain", signed=False)
    text = (out / "compliance.md").read_text()
    rows = _rows(text)
    assert _status(rows["MEASURE 2.11"]) == "not covered"
    assert "no `bias.*` check in this run" in rows["MEASURE 2.11"]
    assert _status(rows["A.5.4"]) == "not covered"
    # accuracy is there, discrimination, robustness, signature and approvals are not
    assert _status(rows["Annex IV 2(g)"]) == "partly"
    assert (
        "✗ the test report dated and signed (attestation): `attestation.dsse.json` is not trusted"
        in rows["Annex IV 2(g)"]
    )
    assert "the suite sets no `policy.approvals`" in rows["Annex IV 2(e)"]
    assert _status(rows["Annex IV 2(e)"]) == "not covered"
    assert "unsigned: never verifies" in text


def test_errored_checks_are_not_evidence_and_user_text_is_escaped(project: Project) -> None:
    from llmguard_ops.report import Report

    out = _run(project, WITH_ALL, "escaped")
    report = Report.model_validate_json((out / "report.json").read_text())
    report.suite.name = "x](javascript:alert(1)) | <b>"
    fairness = report.check("fairness")
    fairness.status = type(fairness.status)("error")
    fairness.id = "f|<img src=x>"
    items = {i.ref: i for _, items in assess(report) for i in items}
    assert items["MEASURE 2.11"].status == "not covered"
    assert "no result" in items["MEASURE 2.11"].needs[0].detail

    from llmguard_ops.reporters.compliance import render

    text = render(report)
    prose = re.sub(r"`[^`]*`", "", text)  # inside a code span nothing is markup
    assert "<b>" not in prose and "<img" not in prose and "](javascript" not in prose
    assert "# Compliance mapping: x]\\(javascript:alert(1)) \\| &lt;b&gt;" in text
    assert "`f\\|<img src=x>`" in text  # shown as written, its pipe escaped for the table
    row = _rows(text)["MEASURE 2.11"]
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # the hostile id did not split a cell


def test_report_with_approvals_lists_them_on_the_page(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from evidence_support import cli
    from llmguard_ops.evidence.keys import generate

    project = make_project(tmp_path)
    trust = ["keys:", f"  - {{name: release-ci, public_key: {project.public_key}, roles: [runner]}}"]
    for who, role in (("ada", "ml-lead"), ("grace", "risk")):
        _, public, _ = generate(tmp_path / who)
        trust.append(f"  - {{name: {who}, public_key: {public}, roles: [{role}]}}")
    (tmp_path / "trust.yaml").write_text("\n".join(trust) + "\n")
    strict = (
        "  - id: strict\n    uses: performance.classification\n"
        "    with: {model: candidate, dataset: current}\n"
        "    gate: {accuracy: {min: 0.999}}\n    severity: warning\n"
    )
    out = _run(project, WITH_ALL.replace("policy:\n", strict + "policy:\n"), "review")
    att, folder = out / "attestation.dsse.json", tmp_path / "approvals"
    pending = _rows((out / "compliance.md").read_text())["Annex IV 2(g)"]
    assert _status(pending) == "partly" and "pending: " in pending

    def report() -> str:
        r = cli(capsys, "report", out / "report.json", "--key", project.public_key,
                "--approvals", folder, "--trust", tmp_path / "trust.yaml")  # fmt: skip
        assert r.code == 0, r.err
        return (out / "compliance.md").read_text()

    r = cli(capsys, "approve", att, "--key", tmp_path / "ada" / "llmguard.key", "--as", "ada",
            "--role", "ml-lead", "--reason", "read it", "--out", folder)  # fmt: skip
    assert r.code == 0, r.err
    text = report()
    assert "they do not meet the policy" in text and "approved by ada (ml-lead)" in text
    assert "missing: no valid approval from the role risk" in text
    assert _status(_rows(text)["Annex IV 2(g)"]) == "partly"
    r = cli(capsys, "approve", att, "--key", tmp_path / "grace" / "llmguard.key", "--as", "grace",
            "--role", "risk", "--reason", "bias checked", "--out", folder)  # fmt: skip
    assert r.code == 0, r.err
    text = report()
    assert "they meet the policy" in text and "approved by grace (risk)" in text
    row = _rows(text)["Annex IV 2(g)"]
    assert _status(row) == "covered" and "✓ signed by the responsible persons (approvals): approved (2 of 2" in row
    # without the trust file the approvals cannot be checked: a usage error
    r = cli(capsys, "report", out / "report.json", "--key", project.public_key, "--approvals", folder)
    assert r.code == 2 and "--trust" in r.err
