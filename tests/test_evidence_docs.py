"""Every example in docs/evidence.md is a real file that the tests run or validate."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.docs_support import texts

from evidence_support import Project, make_project

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "evidence.md"
DATA = REPO / "tests" / "data" / "evidence"


def blocks(lang: str) -> list[str]:
    return texts(DOC, lang)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Project:
    import warnings

    import llmguard_ops

    project = make_project(tmp_path_factory.mktemp("docs"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        outcome = llmguard_ops.run(project.suite(), project.root / "llmguard-out", key=project.private_key)
    assert outcome.report.signed
    shutil.copy(project.public_key, project.root / "llmguard.pub")
    return project


def test_the_strict_suite_example_loads() -> None:
    """(docs/evidence.md's waivers example is the tested file: test_docs_examples.py)"""
    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager

    loaded = load_suite(DATA / "strict-suite.yaml", get_plugin_manager().registry())
    assert loaded.suite.policy.require_signature and loaded.suite.waivers[0].check == "calibration"


def test_the_securesystemslib_example_runs(signed: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    sslib_example, api_example = blocks("python")
    monkeypatch.chdir(signed.root)
    namespace: dict[str, object] = {}
    exec(compile(sslib_example, str(DOC), "exec"), namespace)
    statement = namespace["statement"]
    assert isinstance(statement, dict) and statement["subject"][0]["name"] == "candidate"
    (signed.root / "models").mkdir(exist_ok=True)
    shutil.copy(signed.model, signed.root / "models" / "candidate.joblib")
    namespace = {}
    exec(compile(api_example, str(DOC), "exec"), namespace)
    assert namespace["checked"].matches == {"models/candidate.joblib": "subject candidate"}  # type: ignore[attr-defined]


@pytest.mark.skipif(not (shutil.which("jq") and shutil.which("openssl")), reason="needs jq and openssl")
def test_the_openssl_recipe_verifies_and_lists_sha256sum_lines(signed: Project, tmp_path: Path) -> None:
    script = DATA / "verify_openssl.sh"  # shown verbatim in the doc (test_docs_examples.py)
    att = signed.root / "llmguard-out" / "attestation.dsse.json"
    proc = subprocess.run(
        ["bash", str(script), str(att), str(signed.public_key)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Signature Verified Successfully" in proc.stderr
    assert all(re.match(r"^[0-9a-f]{64}  /", line) for line in proc.stdout.splitlines())
    check = subprocess.run(["sha256sum", "--check", "--strict"], input=proc.stdout, capture_output=True, text=True)
    assert check.returncode == 0 and "OK" in check.stdout
    tampered = tmp_path / "att.json"
    tampered.write_text(att.read_text().replace('"payload":"ey', '"payload":"eX', 1))
    bad = subprocess.run(
        ["bash", str(script), str(tampered), str(signed.public_key)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert bad.returncode != 0
