"""Waivers: approved and expiring; used ones in the report and the signed predicate."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from evidence_support import Project, cli, make_project
from llmguard_ops.evidence.waivers import load_file

DATA = Path(__file__).parent / "data" / "evidence"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("waivers"))


def waiver_file(folder: Path, expires: str, check: str = "quality") -> Path:
    path = folder / "waivers.yaml"
    path.write_text(f"""\
- check: {check}
  approver: jane.doe@example.com
  reason: accuracy floor raised before the new labels landed; see RISK-42
  expires: {expires}
""")
    return path


def predicate(out: Path) -> dict[str, object]:
    envelope = json.loads((out / "attestation.dsse.json").read_text())
    data: dict[str, object] = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    return data


def test_a_valid_waiver_turns_a_blocking_failure_into_a_note(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = project.suite(folder=tmp_path, minimum=0.99)
    r = cli(capsys, "run", suite, "--out", tmp_path / "blocked", "--no-audit-log", "--quiet")
    assert r.code == 1
    waivers = waiver_file(tmp_path, "2999-12-31")
    out = tmp_path / "waived"
    r = cli(
        capsys,
        "run",
        suite,
        "--out",
        out,
        "--waiver",
        waivers,
        "--key",
        project.private_key,
        "--no-audit-log",
    )
    assert r.code == 0, r.out
    report = json.loads((out / "report.json").read_text())
    check = report["checks"][0]
    assert check["status"] == "fail" and check["metrics"]["accuracy"]["value"] > 0.5  # values kept
    assert check["waiver"]["approver"] == "jane.doe@example.com"
    assert any("waived by jane.doe@example.com" in r for r in report["decision"]["reasons"])
    [used] = report["waivers"]
    assert used["status"] == "applied" and used["source"] == str(waivers) and len(used["source_sha256"]) == 64
    assert predicate(out)["waivers"] == report["waivers"]


def test_an_expired_waiver_is_ignored_with_a_warning(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = project.suite(folder=tmp_path, minimum=0.99)
    out = tmp_path / "out"
    r = cli(
        capsys,
        "run",
        suite,
        "--out",
        out,
        "--waiver",
        waiver_file(tmp_path, "2020-01-31"),
        "--no-audit-log",
    )
    assert r.code == 1
    assert "expired on 2020-01-31; ignored" in r.err
    report = json.loads((out / "report.json").read_text())
    assert report["waivers"][0]["status"] == "expired" and report["checks"][0]["waiver"] is None
    assert predicate(out)["waivers"][0]["status"] == "expired"  # type: ignore[index]


def test_suite_waiver_not_needed_when_the_check_passes(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = project.suite(
        folder=tmp_path,
        minimum=0.5,
        extra=("waivers:\n  - {check: quality, approver: ops, reason: flaky data feed, expires: 2999-01-01}\n"),
    )
    out = tmp_path / "out"
    r = cli(capsys, "run", suite, "--out", out, "--no-audit-log", "--quiet")
    assert r.code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["waivers"] == [
        {
            "check": "quality",
            "approver": "ops",
            "reason": "flaky data feed",
            "expires": "2999-01-01",
            "source": "suite",
            "status": "not needed",
        }
    ]


def test_bad_waiver_files_name_file_line_and_key(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = project.suite(folder=tmp_path)
    r = cli(
        capsys,
        "run",
        suite,
        "--out",
        tmp_path / "o",
        "--waiver",
        waiver_file(tmp_path, "2999-01-01", check="qualty"),
    )
    assert r.code == 2 and "waivers.yaml:1:10 [0].check: no check 'qualty'" in r.err
    assert "did you mean 'quality'" in r.err
    r = cli(capsys, "run", suite, "--out", tmp_path / "o", "--waiver", waiver_file(tmp_path, "soon"))
    assert r.code == 2 and "waivers.yaml:4:12" in r.err and "ISO date" in r.err


def test_the_documented_waiver_file_is_valid() -> None:
    entries = load_file(DATA / "waivers.yaml", ["quality", "calibration", "vs-champion"])
    assert [e.waiver.check for e in entries] == ["calibration"]


def test_validate_refuses_a_suite_waiver_for_an_unknown_check(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = project.suite(
        folder=tmp_path,
        extra="waivers:\n  - {check: qualty, approver: ops, reason: r, expires: 2999-01-01}\n",
    )
    r = cli(capsys, "validate", suite)
    assert r.code == 2 and "waivers[0].check: no check 'qualty'" in r.err
