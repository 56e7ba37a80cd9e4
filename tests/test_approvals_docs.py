"""The examples of the Approvals and Standard formats sections of docs/evidence.md run (that
the YAML shown is the tested files is checked in test_docs_examples.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.docs_support import texts

from evidence_support import cli, make_project
from llmguard_ops.evidence.keys import generate

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "evidence.md"
DATA = REPO / "tests" / "data" / "evidence" / "approvals"


def test_the_documented_flow_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import yaml

    from llmguard_ops.cli import main

    (tmp_path / "project").mkdir()
    project = make_project(tmp_path / "project")
    keys = tmp_path / "keys"
    keys.mkdir()
    for who in ("ada", "grace-2026", "grace-2025"):
        _private, public, _ = generate(tmp_path / who)
        shutil.copy(public, keys / f"{who}.pub")
    shutil.copy(project.public_key, keys / "ci.pub")
    shutil.copy(DATA / "trust.yaml", tmp_path / "trust.yaml")
    policy = yaml.safe_load((DATA / "policy.yaml").read_text())["policy"]["approvals"]
    extra = (
        "  - id: strict\n    uses: performance.classification\n"
        "    with: {model: candidate, dataset: current}\n"
        "    gate: {accuracy: {min: 0.999}}\n    severity: warning\n"
        f"policy:\n  approvals: {policy}\n"
    ).replace("True", "true")
    out = tmp_path / "llmguard-out"
    code = main(["run", str(project.suite(extra=extra)), "--out", str(out),
                 "--key", str(project.private_key), "--no-audit-log", "--quiet"])  # fmt: skip
    assert code == 3
    att = out / "attestation.dsse.json"
    folder = tmp_path / "approvals"
    for who, name, role in (("ada", "Ada Lovelace", "ml-lead"), ("grace-2026", "Grace Hopper", "risk")):
        r = cli(capsys, "approve", att, "--key", tmp_path / who / "llmguard.key", "--as", name,
                "--role", role, "--reason", "read the report", "--out", folder,
                "--audit-log", tmp_path / who / "approvals.jsonl")  # fmt: skip
        assert r.code == 0 and r.out.startswith("approved: ")
    # a log whose head another reviewer's key signs is refused before anything is written
    r = cli(capsys, "approve", att, "--key", tmp_path / "ada" / "llmguard.key", "--as", "Ada Lovelace",
            "--role", "ml-lead", "--reason", "again", "--out", tmp_path / "none",
            "--audit-log", tmp_path / "grace-2026" / "approvals.jsonl")  # fmt: skip
    assert r.code == 2 and "refusing to append" in r.err and not (tmp_path / "none").exists()
    r = cli(capsys, "verify", att, "--key", keys / "ci.pub", "--artifact", project.model,
            "--approvals", folder, "--trust", tmp_path / "trust.yaml")  # fmt: skip
    assert r.code == 0, r.out
    assert "run signed by release-ci" in r.out and "approved by Grace Hopper (risk)" in r.out
    # the old key's approvals are made after its not_after: they do not count
    r = cli(capsys, "approve", att, "--key", tmp_path / "grace-2025" / "llmguard.key",
            "--as", "Grace Hopper", "--role", "risk", "--reason", "x", "--out", tmp_path / "old")  # fmt: skip
    r = cli(capsys, "verify", att, "--key", keys / "ci.pub", "--approvals", tmp_path / "old",
            "--trust", tmp_path / "trust.yaml")  # fmt: skip
    assert r.code == 1 and "outside the key's validity" in r.out


def test_the_standard_formats_example_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import warnings

    import llmguard_ops

    project = make_project(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        llmguard_ops.run(project.suite(), tmp_path / "llmguard-out", key=project.private_key)
    shutil.copy(project.public_key, tmp_path / "llmguard.pub")
    monkeypatch.chdir(tmp_path)
    [example] = texts(DOC, "py", section="Standard formats")
    namespace: dict[str, object] = {}
    exec(compile(example, str(DOC), "exec"), namespace)
    assert namespace["test_result"]["result"] == "PASSED"  # type: ignore[index]
    assert namespace["errors"] is None
