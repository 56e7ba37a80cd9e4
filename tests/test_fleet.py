"""Fleets: one supervised run per candidate, a signed summary, a shared audit log."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.fleet_support import SUITE, llmguard, make_project
from tests.ray_support import ray_cluster  # noqa: F401  (the session's Ray cluster)

from llmguard_ops.cli import main
from llmguard_ops.errors import SuiteError
from llmguard_ops.evidence import audit
from llmguard_ops.evidence.keys import generate, load_public
from llmguard_ops.evidence.verify import verify_attestation
from llmguard_ops.fleet import candidate_argv, fleet_exit, verify_fleet
from llmguard_ops.matrix import load_matrix, suite_matrix


@pytest.fixture(scope="module")
def fleet_project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three candidates and a crashing one, run as one local fleet, signed with a real key."""
    root = tmp_path_factory.mktemp("fleet")
    suite, matrix = make_project(root, 3, crash=True)
    private, public, _ = generate(root / "keys")
    ran = llmguard(
        "run", str(suite), "--matrix", str(matrix), "--out", "out", "--jobs", "2", "--key", str(private), cwd=root
    )
    return {"root": root, "suite": suite, "matrix": matrix, "key": private, "pub": public, "ran": ran}


def _metrics(report: dict[str, Any]) -> dict[str, Any]:
    return {c["id"]: (c["status"], c["metrics"], [g["passed"] for g in c["gates"]]) for c in report["checks"]}


@pytest.mark.slow
def test_each_candidate_is_the_run_it_would_be_alone(fleet_project: dict[str, Any]) -> None:
    root, ran = fleet_project["root"], fleet_project["ran"]
    assert ran.returncode == 1, ran.stderr  # m1 and crash BLOCK
    out = root / "out"
    summary = json.loads((out / "fleet.json").read_text())
    by_name = {c["name"]: c for c in summary["candidates"]}
    assert list(by_name) == ["m0", "m1", "m2", "crash"]
    assert {n: c["decision"] for n, c in by_name.items()} == {
        "m0": "PROMOTE",
        "m1": "BLOCK",
        "m2": "PROMOTE",
        "crash": "BLOCK",
    }
    assert summary["counts"] == {"PROMOTE": 2, "REVIEW": 0, "BLOCK": 2, "ERROR": 0}
    assert summary["exit_status"] == 1
    public, keyid = load_public(fleet_project["pub"])
    seqs = []
    for name in ("m0", "m1", "m2"):
        cand = by_name[name]
        report = json.loads((out / name / "report.json").read_text())
        assert report["run_id"] == cand["run_id"]
        assert report["suite"]["overrides"] == [f"models.candidate.path=models/{name}.joblib"]
        verified = verify_attestation((out / name / "attestation.dsse.json").read_bytes(), public, keyid)
        assert verified.predicate["run_id"] == cand["run_id"] and cand["signed"]
        seqs.append(cand["audit_seq"])
        # the same candidate run alone gives the same decision and the same metrics
        alone = llmguard(
            "run",
            str(fleet_project["suite"]),
            "--set",
            f"models.candidate.path=models/{name}.joblib",
            "--out",
            f"alone-{name}",
            "--no-audit-log",
            "-q",
            cwd=root,
        )
        single = json.loads((root / f"alone-{name}" / "report.json").read_text())
        assert alone.returncode == cand["exit_status"] == {"PROMOTE": 0, "BLOCK": 1}[cand["decision"]]
        assert single["decision"] == report["decision"]
        assert _metrics(single) == _metrics(report)
    assert sorted(seqs) == [1, 2, 3]  # one audit entry each, by each run
    assert by_name["m1"]["failing_gates"] and "accuracy" in by_name["m1"]["failing_gates"][0]
    # the crashing candidate: the supervisor's BLOCK report, the rest completed
    crash = by_name["crash"]
    assert crash["exit_status"] == 1 and crash["report_sha256"] and crash["attestation"] is None
    assert any("RunAborted" in f and "exit status 7" in f for f in crash["failing_gates"])
    entries = [json.loads(line) for line in (root / ".llmguard" / "audit.jsonl").read_text().splitlines()]
    assert crash["audit_seq"] == 4 and entries[3]["run_id"] == crash["run_id"]  # recorded by the fleet
    assert entries[3]["decision"] == "BLOCK" and entries[3]["report_sha256"] == crash["report_sha256"]
    # the audit log's chain and signed head hold
    log = root / ".llmguard" / "audit.jsonl"
    assert audit.verify(log, public, keyid).intact
    assert main(["audit", "verify", "--log", str(log), "--key", str(fleet_project["pub"])]) == 0
    # fleet.md is the table of the same facts
    table = (out / "fleet.md").read_text()
    for name, cand in by_name.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert f"**{cand['decision']}**" in row and cand["report_sha256"][:12] in row
    # the summary is signed over fleet.json's bytes; tampering is caught
    assert verify_fleet(out, public, keyid) == []
    assert main(["fleet", "verify", str(out), "--key", str(fleet_project["pub"])]) == 0
    _, other, _ = generate(root / "other-keys")
    assert main(["fleet", "verify", str(out), "--key", str(other)]) == 1
    copy = root / "tampered"
    shutil.copytree(out, copy)
    report = copy / "m0" / "report.json"
    report.write_text(report.read_text().replace('"PROMOTE"', '"BLOCK"'))
    assert verify_fleet(copy, public, keyid) == ["m0: m0/report.json was changed since the fleet ran"]
    shutil.copy(out / "m1" / "attestation.dsse.json", copy / "m0" / "attestation.dsse.json")
    assert "m0: m0/attestation.dsse.json was changed since the fleet ran" in verify_fleet(copy, public, keyid)
    (copy / "fleet.json").write_text((copy / "fleet.json").read_text().replace('"BLOCK"', '"PROMOTE"'))
    assert verify_fleet(copy, public, keyid) == ["fleet.json is not the file fleet.dsse.json signed"]


@pytest.mark.slow
def test_a_ray_task_fleet_gives_the_local_results(
    fleet_project: dict[str, Any],
    ray_cluster: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The suite's own ``matrix:`` run as Ray tasks on the local cluster: same decisions and metrics."""
    from llmguard_ops.cli import build_parser
    from llmguard_ops.fleet import run_fleet

    root = fleet_project["root"]
    # and one candidate whose model kills its supervisor: here, the Ray worker itself
    (root / "killer_model.py").write_text(
        "import os, signal\n\ndef make():\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    )
    killer = "- name: killer\n  set: {models.candidate.loader: python, models.candidate.path: killer_model.py:make}\n"
    matrix = fleet_project["matrix"].read_text().replace("candidates:\n", "candidates:\n" + killer)
    suite = root / "with-matrix.yaml"
    suite.write_text(SUITE + "matrix:\n" + textwrap.indent(matrix, "  "))
    argv = ["run", str(suite), "--out", str(tmp_path / "ray-out"), "--no-audit-log", "-q"]
    loaded = suite_matrix(suite)
    assert loaded is not None and [c.name for c in loaded.matrix.candidates] == ["killer", "m0", "m1", "m2", "crash"]
    code = run_fleet(argv, build_parser().parse_args(argv), loaded, executor="ray", quiet=True)
    assert code == 1
    ray_summary = json.loads((tmp_path / "ray-out" / "fleet.json").read_text())
    assert ray_summary["executor"] == "ray"
    lost = ray_summary["candidates"].pop(0)
    assert (lost["name"], lost["decision"], lost["exit_status"]) == ("killer", "ERROR", None)
    assert "its Ray task failed" in lost["problem"]
    assert ray_summary["counts"] == {"PROMOTE": 2, "REVIEW": 0, "BLOCK": 2, "ERROR": 1}
    for cand in ray_summary["candidates"]:
        local = json.loads((root / "out" / cand["name"] / "report.json").read_text())
        mine = json.loads((tmp_path / "ray-out" / cand["name"] / "report.json").read_text())
        assert mine["decision"]["decision"] == local["decision"]["decision"] == cand["decision"]
        if cand["name"] != "crash":
            assert _metrics(mine) == _metrics(local)


def test_matrix_errors_name_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = {
        "candidates:\n  - name: a\n    sett: {x: 1}\n": (3, "candidates[0].sett", "unknown key 'sett'"),
        "candidates:\n  - name: a\n  - name: A\n": (3, "candidates[1].name", "used twice"),
        "candidates:\n  - name: a b\n": (2, "candidates[0].name", "pattern"),
        "candidates:\n  - name: a\n    set: {'models candidate': 1}\n": (
            3,
            "candidates[0].set.models candidate",
            "PATH",
        ),
        "set: {}\n": (1, "candidates", "missing required key 'candidates'"),
        "candidates:\n  - name: logs\n": (2, "candidates[0].name", "reserved"),
        "candidates: [\n": (2, None, "invalid YAML"),
        # a resolved secret would travel as --set into every report's overrides: refused
        "candidates:\n  - name: a\n    set: {models.candidate.options.api_key: '${FLEET_TEST_SECRET}'}\n": (
            3,
            "candidates[0].set.models.candidate.options.api_key",
            "environment references are not allowed",
        ),
    }
    monkeypatch.setenv("FLEET_TEST_SECRET", "s3cr3t-value-never-written")
    for i, (text, (line, key, words)) in enumerate(cases.items()):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(text)
        with pytest.raises(SuiteError) as info:
            load_matrix(path)
        err = info.value
        assert (err.file, err.line) == (str(path), line), (text, err.format())
        if key is not None:
            assert err.key == key, (text, err.format())
        assert words in err.format(), (text, err.format())
        assert "s3cr3t" not in err.format()
    # through the CLI: exit 2, one located line, no run started
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert main(["run", str(suite), "--matrix", str(tmp_path / "m0.yaml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{tmp_path / 'm0.yaml'}:3" in err and "sett" in err
    assert not (tmp_path / "o").exists()
    # a suite's own matrix: located in the suite file
    suite.write_text(SUITE + "matrix:\n  candidates:\n    - {name: a, set: 3}\n")
    with pytest.raises(SuiteError) as info:
        suite_matrix(suite)
    assert (info.value.line, info.value.key) == (15, "matrix.candidates[0].set")
    assert main(["run", str(suite), "--jobs", "2", "--no-matrix", "--out", str(tmp_path / "o")]) == 2
    assert "--jobs applies to fleets only" in capsys.readouterr().err
    # a broken audit log stops the fleet before any candidate runs
    good = tmp_path / "good.yaml"
    good.write_text("candidates: [{name: a}]\n")
    log = tmp_path / "audit.jsonl"
    log.write_text('{"seq": 1}\n')
    args = ["run", str(suite), "--no-matrix", "--matrix", str(good), "--out", str(tmp_path / "o")]
    assert main(args) == 2 and "exclude each other" in capsys.readouterr().err
    assert main([*args[:2], *args[3:], "--audit-log", str(log)]) == 2
    assert "refusing to append" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_candidate_argv_and_exit_rule(tmp_path: Path) -> None:
    argv = [
        "-p",
        "x",
        "run",
        "s.yaml",
        "--matrix",
        "m.yaml",
        "--jobs=3",
        "--set",
        "a=1",
        "--out",
        "o",
        "--no-matrix",
        "--executor",
        "ray",
    ]
    assert candidate_argv(argv, tmp_path / "c", ["b=2"]) == [
        "-p",
        "x",
        "run",
        "s.yaml",
        "--set",
        "a=1",
        "--out",
        "o",
        "--set",
        "b=2",
        "--out",
        str(tmp_path / "c"),
        "--no-matrix",
    ]
    rec = lambda decision, code: {"decision": decision, "exit_status": code}  # noqa: E731
    assert fleet_exit([rec("PROMOTE", 0), rec("PROMOTE", 0)]) == 0
    assert fleet_exit([rec("PROMOTE", 0), rec("REVIEW", 3)]) == 3
    assert fleet_exit([rec("REVIEW", 3), rec("BLOCK", 1)]) == 1
    assert fleet_exit([rec("PROMOTE", 0), rec("ERROR", None)]) == 1  # a lost run never passes
    assert fleet_exit([rec("BLOCK", 1), rec("ERROR", 2)]) == 2


def test_matrix_values_are_passed_like_set(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "set: {checks.quality.with.n_resamples: 10}\n"
        "candidates:\n"
        "  - name: a\n"
        "    set: {models.candidate.path: 'x y.joblib', checks.quality.gate.accuracy.min: 0.5,"
        " 'checks.quality.with.n_resamples': 20, models.candidate.options: {trusted: [a.B]}, t: 'yes'}\n"
    )
    loaded = load_matrix(path)
    assert loaded.overrides(loaded.matrix.candidates[0]) == [
        "checks.quality.with.n_resamples=20",
        "models.candidate.path=x y.joblib",
        "checks.quality.gate.accuracy.min=0.5",
        'models.candidate.options={"trusted": ["a.B"]}',
        't="yes"',  # YAML would read a bare yes as true
    ]


WORKER = """\
import sys, time
from pathlib import Path
from llmguard_ops.evidence import audit
from llmguard_ops.evidence.keys import load_private

log, key, worker, start = Path(sys.argv[1]), load_private(Path(sys.argv[2])), sys.argv[3], float(sys.argv[4])
while time.time() < start:
    time.sleep(0.005)
for i in range(15):
    audit.check_appendable_now(log, key)  # what a run does before its first check
    audit.append(log, {"run_id": f"{worker}-{i}", "decision": "PROMOTE"}, key)
"""


def test_four_concurrent_writers_keep_the_chain(tmp_path: Path) -> None:
    import time

    private, public_path, _ = generate(tmp_path / "keys")
    log = tmp_path / ".llmguard" / "audit.jsonl"
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(log), str(private), f"w{w}", str(start)], stderr=subprocess.PIPE
        )
        for w in range(4)
    ]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    public, keyid = load_public(public_path)
    verdict = audit.verify(log, public, keyid)
    assert verdict.intact and verdict.count == 60, verdict.line()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, 61))
    assert {e["run_id"] for e in entries} == {f"w{w}-{i}" for w in range(4) for i in range(15)}
    assert main(["audit", "verify", "--log", str(log), "--key", str(public_path)]) == 0
