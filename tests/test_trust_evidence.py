"""Evidence that binds: each test tries to make ``llmguard verify`` say yes wrongly.

Every attack ends in a failed verify (exit 1) or an error (exit 2); what an explicit
flag lets through is reported as accepted by that flag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from evidence_support import Project, cli, make_project
from llmguard_ops.artifacts import sha256_path
from llmguard_ops.errors import ArtifactError
from llmguard_ops.evidence import dsse
from llmguard_ops.evidence.keys import generate, load_private, load_public
from llmguard_ops.evidence.statement import canonical_bytes
from llmguard_ops.evidence.verify import verify_attestation

ATT = "attestation.dsse.json"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("trust"))


def signed_run(project: Project, out: Path, *extra: Any, suite: Path | None = None) -> int:
    from llmguard_ops.cli import main

    args = ["run", str(suite or project.suite()), "--out", str(out), "--quiet"]
    logged = "--audit-log" in map(str, extra)
    args += ["--key", str(project.private_key), *([] if logged else ["--no-audit-log"]), *map(str, extra)]
    return main(args)


@pytest.fixture(scope="module")
def promoted(project: Project) -> Path:
    out = project.root / "promoted"
    assert signed_run(project, out) == 0
    return out


@pytest.fixture(scope="module")
def blocked(project: Project) -> Path:
    out = project.root / "blocked"
    suite = project.suite("strict.yaml", minimum=0.999)
    assert signed_run(project, out, suite=suite) == 1
    return out


@pytest.fixture(scope="module")
def with_baseline(project: Project) -> tuple[Path, Path]:
    """A run with a candidate and a different baseline model; returns (out, baseline file)."""
    import joblib
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    frame = pd.read_csv(project.data)
    baseline = project.root / "champion.joblib"
    joblib.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(frame[["x1", "x2"]], frame.label), baseline)
    suite = project.suite(
        "pair.yaml",
        extra="  - id: base\n    uses: performance.classification\n"
        "    with: {model: baseline, dataset: current, n_resamples: 30}\n"
        "    severity: info\n",
    )
    text = suite.read_text().replace("models:\n", f"models:\n  baseline: {{loader: sklearn, path: {baseline}}}\n")
    suite.write_text(text)
    out = project.root / "pair"
    assert signed_run(project, out, suite=suite) == 0
    return out, baseline


def verify(capsys: pytest.CaptureFixture[str], project: Project, out: Path, *extra: Any) -> Any:
    return cli(capsys, "verify", out / ATT, "--key", project.public_key, *extra)


def test_the_candidate_of_a_promote_verifies_and_says_what_it_bound(
    project: Project, promoted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = verify(capsys, project, promoted, "--artifact", project.model)
    assert r.code == 0, r.out
    assert "matches subject candidate" in r.out and "bound: artifacts" in r.out
    assert "the attested one" in r.out  # report.json beside it was checked
    r = verify(capsys, project, promoted)
    assert r.code == 0 and "bound: nothing" in r.out


def test_a_block_decision_does_not_verify_an_artifact_without_a_flag(
    project: Project, blocked: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = verify(capsys, project, blocked, "--artifact", project.model)
    assert r.code == 1 and "decision is BLOCK" in r.out and "--allow-decision BLOCK" in r.out
    r = verify(capsys, project, blocked, "--artifact", project.model, "--allow-decision", "REVIEW")
    assert r.code == 1
    r = verify(capsys, project, blocked, "--artifact", project.model, "--allow-decision", "BLOCK", "--json")
    assert r.code == 0
    data = json.loads(r.out)
    assert data["decision"] == "BLOCK" and data["bound"] is True
    assert any("BLOCK" in line for line in data["accepted_by_flag"])


def test_an_artifact_matching_only_the_baseline_is_not_the_candidate(
    project: Project, with_baseline: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out, baseline = with_baseline
    r = verify(capsys, project, out, "--artifact", baseline)
    assert r.code == 1 and "matches subject 'baseline', not the candidate" in r.out
    r = verify(capsys, project, out, "--artifact", baseline, "--role", "baseline")
    assert r.code == 0 and "matches subject baseline" in r.out and "accepted:" in r.out
    r = verify(capsys, project, out, "--artifact", project.model, "--role", "champion")
    assert r.code == 1 and "no subject 'champion'" in r.out


def forge(statement: dict[str, Any], folder: Path) -> Path:
    """An attacker's own key signs a forged statement; its public half is shipped beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    private, public, _ = generate(folder / "k")
    key = load_private(private)
    envelope = dsse.sign(canonical_bytes(statement), key.private, key.keyid)
    (folder / ATT).write_bytes(dsse.serialize(envelope))
    shutil.copy(public, folder / "development-key.pub")
    shutil.copy(public, folder / "llmguard.pub")
    return folder


def statement_of(out: Path) -> dict[str, Any]:
    envelope = json.loads((out / ATT).read_bytes())
    data: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    return data


def test_a_key_shipped_beside_the_envelope_is_not_a_trust_root(
    project: Project, blocked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statement = statement_of(blocked)
    statement["predicate"]["decision"]["decision"] = "PROMOTE"
    statement["predicate"]["signer"]["development_key"] = False
    forged = forge(statement, tmp_path / "forged")
    for key in ("development-key.pub", "llmguard.pub"):
        r = cli(capsys, "verify", forged / ATT, "--key", forged / key, "--artifact", project.model)
        assert r.code == 1 and "not trusted" in r.out, r.out
    # the flag checks integrity only, and says so
    r = cli(capsys, "verify", forged / ATT, "--key", forged / "llmguard.pub", "--allow-dev-key")
    assert r.code == 0 and "UNTRUSTED" in r.out
    # the key the verifier holds refuses the forgery
    r = cli(capsys, "verify", forged / ATT, "--key", project.public_key, "--artifact", project.model)
    assert r.code == 1


def test_an_edited_report_beside_the_attestation_fails(
    project: Project, promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "copy"
    shutil.copytree(promoted, out)
    report = json.loads((out / "report.json").read_text())
    report["checks"][0]["metrics"]["accuracy"]["value"] = 0.99
    (out / "report.json").write_text(json.dumps(report))
    r = verify(capsys, project, out, "--artifact", project.model)
    assert r.code == 1 and "report was edited, or the attestation is from another run" in r.out
    r = verify(capsys, project, out)  # even without --artifact
    assert r.code == 1
    r = cli(capsys, "verify", promoted / ATT, "--key", project.public_key, "--report", out / "report.json")
    assert r.code == 1


def test_a_replayed_attestation_from_another_run_fails(
    project: Project, promoted: Path, blocked: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The PROMOTE attestation copied over a BLOCK run's folder does not vouch for its report."""
    out = tmp_path / "replay"
    shutil.copytree(blocked, out)
    shutil.copy(promoted / ATT, out / ATT)
    r = verify(capsys, project, out, "--artifact", project.model)
    assert r.code == 1 and "another run" in r.out


KILLER = """
import os, signal
from pathlib import Path
from llmguard_ops import hookimpl
from llmguard_ops.registry import Reporter

def _die(report, out_dir):
    if os.environ.get("KILL_AFTER_REPORT"):
        assert (Path(out_dir) / "report.json").exists()
        os.kill(os.getpid(), signal.SIGKILL)
    return []

@hookimpl
def llmguard_register_reporters(register):
    register(Reporter(name="killer", write=_die))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_run_killed_after_writing_its_report_leaves_nothing_that_verifies(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "killer_plugin.py").write_text(textwrap.dedent(KILLER))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    base = [sys.executable, "-m", "llmguard_ops.cli", "-p", "killer_plugin", "run"]
    args = [str(project.suite()), "--out", str(out), "--key", str(project.private_key), "--no-audit-log", "-q"]
    assert signed_run(project, out) == 0  # a good run first
    assert verify(capsys, project, out, "--artifact", project.model).code == 0
    before = (out / "report.json").read_bytes()
    killed = subprocess.run(
        [*base, *args], env={**env, "KILL_AFTER_REPORT": "1"}, capture_output=True, text=True, check=False
    )
    # the supervising parent sees the child killed and writes a BLOCK report in its place
    assert killed.returncode == 1, killed.stderr
    assert "SIGKILL" in killed.stdout + killed.stderr
    assert (out / "report.json").read_bytes() != before  # the killed run's report is there
    r = verify(capsys, project, out, "--artifact", project.model)
    assert r.code == 2 and "cannot read the attestation" in r.err
    # an attacker who puts a valid attestation of an earlier run back gains nothing either
    assert signed_run(project, tmp_path / "prev") == 0
    shutil.copy(tmp_path / "prev" / ATT, out / ATT)
    r = verify(capsys, project, out, "--artifact", project.model)
    assert r.code == 1 and "another run" in r.out


def test_every_single_byte_change_still_fails_after_a_new_signed_run(project: Project, tmp_path: Path) -> None:
    """Tamper with a real attestation, let the next signed run happen, and check again."""
    log = tmp_path / "audit.jsonl"
    first = tmp_path / "first"
    assert signed_run(project, first, "--audit-log", log) == 0
    data = (first / ATT).read_bytes()
    public, keyid = load_public(project.public_key)
    verify_attestation(data, public, keyid)
    flips = [bytes(data[:i]) + bytes([data[i] ^ 0x01]) + bytes(data[i + 1 :]) for i in range(len(data))]
    (first / ATT).write_bytes(flips[len(flips) // 2])  # one tampered copy stays on disk
    assert signed_run(project, tmp_path / "second", "--audit-log", log) == 0  # the next signed run
    entries = [json.loads(line) for line in log.read_bytes().splitlines()]
    attested = {e["attestation_sha256"] for e in entries}
    survivors = []
    for i, blob in enumerate(flips):
        try:
            verify_attestation(blob, public, keyid)
            survivors.append(i)
        except dsse.VerificationError:
            pass
        assert hashlib.sha256(blob).hexdigest() not in attested
    assert survivors == []
    r = subprocess.run(
        [sys.executable, "-m", "llmguard_ops.cli", "verify", str(first / ATT), "--key", str(project.public_key)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1
    assert len(data) > 4000


# folder digests ------------------------------------------------------------------------


def hf_snapshot(root: Path, weights: bytes) -> Path:
    """The layout of a Hugging Face cache: snapshot files are links into blobs/."""
    blobs = root / "blobs"
    snap = root / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    (snap / "sub").mkdir(parents=True)
    files = {"config.json": b'{"a": 1}', "model.safetensors": weights, "sub/tok.json": b"{}"}
    for rel, content in files.items():
        blob = blobs / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        os.symlink(os.path.relpath(blob, (snap / rel).parent), snap / rel)
    return snap


def test_a_snapshot_of_links_digests_to_its_content(tmp_path: Path) -> None:
    snap = hf_snapshot(tmp_path / "a", b"\x01" * 1000)
    other = hf_snapshot(tmp_path / "b", b"\x02" * 1000)
    plain = tmp_path / "plain"
    shutil.copytree(snap, plain)  # follows the links: real files, same content
    assert not any(p.is_symlink() for p in plain.rglob("*"))
    digest, kind = sha256_path(snap)
    assert kind == "folder-manifest-sha256"
    assert digest == sha256_path(plain)[0]
    assert digest != sha256_path(other)[0]
    assert digest != hashlib.sha256(b"").hexdigest()
    if shutil.which("sha256sum"):
        pipeline = "find -L . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
        shell = subprocess.run(pipeline, shell=True, cwd=snap, capture_output=True, text=True, check=True)
        assert shell.stdout.split()[0] == digest


def test_empty_dangling_and_looping_folders_are_errors(
    project: Project, promoted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(ArtifactError, match="no regular file"):
        sha256_path(empty)
    r = verify(capsys, project, promoted, "--artifact", empty)
    assert r.code == 2 and "nothing to digest" in r.err
    dangling = tmp_path / "dangling"
    dangling.mkdir()
    (dangling / "ok.txt").write_text("x")
    os.symlink(tmp_path / "missing.bin", dangling / "weights.bin")
    with pytest.raises(ArtifactError, match="dangling"):
        sha256_path(dangling)
    loop = tmp_path / "loop"
    (loop / "a").mkdir(parents=True)
    (loop / "a" / "f.txt").write_text("x")
    os.symlink(loop, loop / "a" / "back")
    with pytest.raises(ArtifactError, match="loop"):
        sha256_path(loop)
