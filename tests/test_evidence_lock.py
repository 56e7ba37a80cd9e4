"""Suite locks: a changed gate, severity, policy or check under --lock refuses to run."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evidence_support import Project, cli, make_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("lock"))


@pytest.fixture
def locked(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path]:
    suite = project.suite(folder=tmp_path, minimum=0.7)
    r = cli(capsys, "lock", suite, "--key", project.private_key)
    assert r.code == 0, r.err
    lock = tmp_path / "suite.lock.json"
    assert lock.exists() and "digest" in r.out
    return suite, lock


def run(capsys: pytest.CaptureFixture[str], project: Project, suite: Path, lock: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli(
        capsys,
        "run",
        suite,
        "--out",
        suite.parent / "out",
        "--lock",
        lock,
        "--key",
        project.private_key,
        "--no-audit-log",
        "--quiet",
        *extra,
    )


def test_unchanged_suite_runs_under_its_lock(
    project: Project, locked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, lock = locked
    r = run(capsys, project, suite, lock)
    assert r.code == 0, r.err
    envelope = json.loads((suite.parent / "out" / "attestation.dsse.json").read_text())
    predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    assert predicate["lock"]["file"] == str(lock) and len(predicate["lock"]["digest"]) == 64


def test_a_lowered_threshold_exits_2_naming_the_gate(
    project: Project, locked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, lock = locked
    r = run(capsys, project, suite, lock, "--set", "checks.quality.gate.accuracy.min=0.5")
    assert r.code == 2
    assert "checks[quality].gate.accuracy.min: 0.7 → 0.5" in r.err
    assert not (suite.parent / "out" / "report.json").exists()  # refused before running anything
    suite.write_text(suite.read_text().replace("min: 0.7", "min: 0.65"))
    r = run(capsys, project, suite, lock)
    assert r.code == 2 and "checks[quality].gate.accuracy.min: 0.7 → 0.65" in r.err


def test_severity_policy_added_gates_and_checks_are_named(
    project: Project, locked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, lock = locked
    text = suite.read_text().replace("severity: blocker", "severity: warning")
    text += "policy: {review_on: never}\n"
    suite.write_text(text)
    r = run(capsys, project, suite, lock, "--set", "checks.quality.gate.roc_auc.min=0.5")
    assert r.code == 2
    for change in (
        'checks[quality].severity: "blocker" → "warning"',
        'policy.review_on: "warning" → "never"',
        "checks[quality].gate.roc_auc.min: (absent) → 0.5",
    ):
        assert change in r.err
    extra = project.suite(
        "more.yaml",
        folder=suite.parent,
        extra=(
            "  - id: calibration\n"
            "    uses: performance.classification\n"
            "    with: {model: candidate, dataset: current, n_resamples: 0}\n"
            "    gate: {ece: {max: 0.2}}\n"
        ),
    )
    r = run(capsys, project, extra, lock)
    assert r.code == 2 and "checks[calibration]: added" in r.err


def test_a_forged_lock_and_a_missing_key_are_refused(
    project: Project, locked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, lock = locked
    envelope = json.loads(lock.read_text())
    body = json.loads(base64.b64decode(envelope["payload"]))
    body["terms"]["checks"]["quality"]["gate"]["accuracy"]["min"] = 0.1
    envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    lock.write_text(json.dumps(envelope))
    r = run(capsys, project, suite, lock)
    assert r.code == 2 and "does not verify" in r.err
    r = cli(capsys, "run", suite, "--out", suite.parent / "o", "--lock", lock, "--no-audit-log")
    assert r.code == 2 and "--lock-key" in r.err


def test_lock_checked_with_lock_key_on_an_unsigned_run(
    project: Project, locked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, lock = locked
    r = cli(
        capsys,
        "run",
        suite,
        "--out",
        suite.parent / "o",
        "--lock",
        lock,
        "--lock-key",
        project.public_key,
        "--no-audit-log",
        "--quiet",
    )
    assert r.code == 0, r.err


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=80, deadline=None)
@given(
    old=finite,
    new=finite,
    metric=st.sampled_from(["accuracy", "p95_ms", "roc_auc_delta"]),
    bound=st.sampled_from(["min", "max"]),
)
def test_any_moved_bound_is_named_exactly_once(old: float, new: float, metric: str, bound: str) -> None:
    from llmguard_ops.evidence.lock import changes

    def terms(value: float) -> dict[str, object]:
        gate = {metric: {bound: value}, "other": {"max": 1.0}}
        return {
            "name": "s",
            "seed": 0,
            "policy": {"review_on": "warning"},
            "checks": {"q": {"uses": "x", "severity": "blocker", "gate": gate, "with": {}}},
        }

    found = changes(terms(old), terms(new))
    if old == new:
        assert found == []
    else:
        assert found == [f"checks[q].gate.{metric}.{bound}: {json.dumps(old)} → {json.dumps(new)}"]


def test_the_lock_covers_datasets_by_minimum_rows(
    project: Project, locked: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    suite, lock = locked
    five = suite.parent / "five_rows.csv"
    five.write_text("".join(project.data.read_text().splitlines(keepends=True)[:6]))
    r = run(capsys, project, suite, lock, "--set", f"datasets.current.path={five}")
    assert r.code == 2
    assert "datasets.current: 5 rows" in r.err and "at least 240" in r.err
    assert not (suite.parent / "out").exists()
    bigger = suite.parent / "more_rows.csv"  # new data of at least the locked size is a run
    text = project.data.read_text()
    bigger.write_text(text + "".join(text.splitlines(keepends=True)[1:11]))
    r = run(capsys, project, suite, lock, "--set", f"datasets.current.path={bigger}")
    assert r.code in (0, 1), r.err


def test_the_lock_can_pin_dataset_digests(project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = project.suite(folder=tmp_path)
    lock = tmp_path / "digest.lock.json"
    r = cli(capsys, "lock", suite, "--key", project.private_key, "--datasets", "digest", "--out", lock)
    assert r.code == 0 and "datasets by digest" in r.out
    assert run(capsys, project, suite, lock).code == 0
    copy = tmp_path / "edited.csv"
    lines = project.data.read_text().splitlines(keepends=True)
    copy.write_text("".join(lines[:1] + lines[2:] + lines[1:2]))  # same rows, reordered
    r = run(capsys, project, suite, lock, "--set", f"datasets.current.path={copy}")
    assert r.code == 2 and "datasets.current.sha256:" in r.err
