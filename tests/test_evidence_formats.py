"""Evidence in standard formats: the in-toto Test Result and the CycloneDX 1.6 ML-BOM."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from evidence_support import Project, make_project
from llmguard_ops.evidence.keys import load_public

EXTRA = """\
  - id: strict
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 30}
    gate: {accuracy: {min: 0.999}}
    severity: warning
  - id: fairness
    uses: bias.group_fairness
    with: {model: candidate, dataset: current, sensitive: [group]}
    gate: {demographic_parity_difference: {max: 0.9}}
    severity: warning
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="module")
def run(project: Project) -> Path:
    from llmguard_ops.cli import main

    out = project.root / "out"
    code = main(
        [
            "run", str(project.suite(extra=EXTRA)), "--out", str(out),
            "--key", str(project.private_key), "--no-audit-log", "--quiet",
        ]
    )  # fmt: skip
    assert code == 3  # the strict warning gate fails: REVIEW
    return out


def _envelope(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_the_test_result_verifies_with_securesystemslib(project: Project, run: Path) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError as SslibError
    from securesystemslib.signer import SSlibKey

    public, keyid = load_public(project.public_key)
    key = SSlibKey.from_crypto(public, keyid=keyid)
    envelope = _envelope(run / "test-result.dsse.json")
    accepted = Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)  # from_dict mutates
    assert list(accepted) == [keyid]
    tampered = copy.deepcopy(envelope)
    statement = json.loads(base64.b64decode(tampered["payload"]))
    statement["predicate"]["result"] = "PASSED"
    tampered["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SslibError):
        Envelope.from_dict(tampered).verify([key], 1)


def test_the_test_result_says_what_was_tested(project: Project, run: Path) -> None:
    from llmguard_ops.artifacts import sha256_path

    statement = json.loads(base64.b64decode(_envelope(run / "test-result.dsse.json")["payload"]))
    report = json.loads((run / "report.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://in-toto.io/attestation/test-result/v0.1"
    predicate = statement["predicate"]
    by_status = {c["id"]: c["status"] for c in report["checks"]}
    assert by_status["strict"] == "warn"
    assert predicate["result"] == "WARNED"
    assert sorted(predicate["passedTests"]) == sorted(i for i, s in by_status.items() if s == "pass")
    assert predicate["warnedTests"] == ["strict"] and predicate["failedTests"] == []
    suite, data = predicate["configuration"]
    assert suite["digest"]["sha256"] == hashlib.sha256(Path(report["suite"]["path"]).read_bytes()).hexdigest()
    assert data["digest"]["sha256"] == sha256_path(project.data)[0]
    assert statement["subject"][0]["digest"]["sha256"] == sha256_path(project.model)[0]
    # the project's own attestation digests it among the run's outputs
    main = json.loads(base64.b64decode(_envelope(run / "attestation.dsse.json")["payload"]))
    digest = hashlib.sha256((run / "test-result.dsse.json").read_bytes()).hexdigest()
    assert main["predicate"]["outputs"]["test-result.dsse.json"] == digest


def test_the_bom_passes_cyclonedx_schema_validation(project: Project, run: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from llmguard_ops.artifacts import sha256_path

    text = (run / "bom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    assert bom["specVersion"] == "1.6"
    by_ref = {c["bom-ref"]: c for c in bom["components"]}
    model, data = by_ref["model:candidate"], by_ref["dataset:current"]
    assert model["type"] == "machine-learning-model" and data["type"] == "data"
    assert model["hashes"] == [{"alg": "SHA-256", "content": sha256_path(project.model)[0]}]
    assert data["hashes"] == [{"alg": "SHA-256", "content": sha256_path(project.data)[0]}]
    card = model["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": "dataset:current"}]
    report = json.loads((run / "report.json").read_text())
    strict = next(c for c in report["checks"] if c["id"] == "strict")["metrics"]["accuracy"]
    row = next(m for m in card["quantitativeAnalysis"]["performanceMetrics"] if m["type"] == "strict: accuracy")
    assert float(row["value"]) == pytest.approx(strict["value"], rel=1e-5)
    assert float(row["confidenceInterval"]["lowerBound"]) == pytest.approx(strict["lower"], rel=1e-5)
    assert float(row["confidenceInterval"]["upperBound"]) == pytest.approx(strict["upper"], rel=1e-5)
    sliced = {m["slice"] for m in card["quantitativeAnalysis"]["performanceMetrics"] if "slice" in m}
    assert sliced == {"group=a", "group=b"}
    (fairness,) = card["considerations"]["fairnessAssessments"]
    assert fairness["groupAtRisk"] == "group: group=a, group=b"
    assert "demographic_parity_difference = " in fairness["harms"] and "gate: pass" in fairness["harms"]
    # an edit the schema forbids is caught by the same validator
    model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][0]["value"] = 0.5
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is not None
