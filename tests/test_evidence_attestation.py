"""keygen → run → verify, end to end through the CLI, and an independent verifier."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence_support import Project, cli, make_project
from llmguard_ops import CheckDefinition, hookimpl
from llmguard_ops.artifacts import sha256_path
from llmguard_ops.evidence import dsse
from llmguard_ops.evidence.dsse import VerificationError
from llmguard_ops.evidence.keys import load_public
from llmguard_ops.evidence.verify import verify_attestation


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("attest"))


@pytest.fixture(scope="module")
def signed_run(project: Project) -> Path:
    """One signed run of the project's suite; returns its output folder."""
    from _pytest.capture import CaptureFixture  # noqa: F401 - type only

    out = project.root / "signed-out"
    from llmguard_ops.cli import main

    code = main(
        [
            "run",
            str(project.suite()),
            "--out",
            str(out),
            "--key",
            str(project.private_key),
            "--audit-log",
            str(project.root / "audit.jsonl"),
            "--quiet",
        ]
    )
    assert code == 0
    return out


def envelope_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "attestation.dsse.json").read_text())
    return data


def statement_of(out: Path) -> dict[str, Any]:
    payload = base64.b64decode(str(envelope_of(out)["payload"]))
    data: dict[str, Any] = json.loads(payload)
    return data


def test_keygen_writes_a_private_key_only_its_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = cli(capsys, "keygen", "--out", tmp_path / "k")
    assert r.code == 0
    assert (tmp_path / "k" / "llmguard.key").stat().st_mode & 0o777 == 0o600
    pem = (tmp_path / "k" / "llmguard.key").read_text()
    assert "PRIVATE KEY" in pem and pem.splitlines()[1] not in r.out + r.err
    again = cli(capsys, "keygen", "--out", tmp_path / "k")
    assert again.code == 2 and "refusing to overwrite" in again.err


def test_signed_run_verifies_with_llmguard_verify(
    project: Project, signed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r = cli(
        capsys,
        "verify",
        signed_run / "attestation.dsse.json",
        "--key",
        project.public_key,
        "--artifact",
        project.model,
    )
    assert r.code == 0, r.out + r.err
    assert r.out.startswith("valid:") and "matches subject candidate" in r.out
    r = cli(
        capsys,
        "verify",
        signed_run / "attestation.dsse.json",
        "--key",
        project.public_key,
        "--artifact",
        signed_run / "report.json",
    )
    assert r.code == 1 and "not a model subject" in r.out and "--role output" in r.out
    r = cli(
        capsys,
        "verify",
        signed_run / "attestation.dsse.json",
        "--key",
        project.public_key,
        "--artifact",
        signed_run / "report.json",
        "--role",
        "output",
    )
    assert r.code == 0 and "matches output report.json" in r.out
    assert "accepted: " in r.out and "--role output" in r.out
    report = json.loads((signed_run / "report.json").read_text())
    assert report["signed"] is True and report["signing"]["development_key"] is False


def test_the_attestation_verifies_with_securesystemslib(project: Project, signed_run: Path) -> None:
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    public, keyid = load_public(project.public_key)
    envelope = envelope_of(signed_run)
    key = SSlibKey.from_crypto(public, keyid=keyid)
    accepted = Envelope.from_dict(copy.deepcopy(envelope)).verify([key], 1)  # from_dict mutates
    assert list(accepted) == [keyid]
    tampered = copy.deepcopy(envelope)
    tampered["payload"] = base64.b64encode(b'{"_type": "forged"}').decode()
    from securesystemslib.exceptions import VerificationError as SslibError

    with pytest.raises(SslibError):
        Envelope.from_dict(tampered).verify([key], 1)


def test_statement_holds_subjects_and_the_evidence(project: Project, signed_run: Path) -> None:
    statement = statement_of(signed_run)
    report = json.loads((signed_run / "report.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://llmguard.dev/attestation/report/v1"
    [subject] = statement["subject"]
    assert subject["name"] == "candidate"
    assert subject["digest"]["sha256"] == hashlib.sha256(project.model.read_bytes()).hexdigest()
    predicate: dict[str, Any] = statement["predicate"]
    suite_text = (project.root / "suite.yaml").read_text()
    assert predicate["suite"] == {
        "name": "evidence-unit",
        "sha256": hashlib.sha256(suite_text.encode()).hexdigest(),
        "content": suite_text,
        "path": report["suite"]["path"],
        "overrides": [],
    }
    assert predicate["datasets"]["current"]["sha256"] == hashlib.sha256(project.data.read_bytes()).hexdigest()
    assert predicate["decision"] == {"decision": "PROMOTE", "reasons": []}
    assert predicate["seeds"]["suite"] == 11 and "quality" in predicate["seeds"]["checks"]
    assert predicate["plugins"]["checks"]["quality"]["uses"] == "performance.classification"
    assert predicate["environment"]["python"] and "packages" in predicate["environment"]
    assert predicate["report"] == report
    outputs: dict[str, str] = predicate["outputs"]
    assert outputs["report.json"] == hashlib.sha256((signed_run / "report.json").read_bytes()).hexdigest()
    assert predicate["signer"]["keyid"] == load_public(project.public_key)[1]


def test_verify_refuses_wrong_artifacts_keys_and_files(
    project: Project, signed_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    att = signed_run / "attestation.dsse.json"
    r = cli(capsys, "verify", att, "--key", project.public_key, "--artifact", project.data)
    assert r.code == 1 and "matches no subject" in r.out
    cli(capsys, "keygen", "--out", tmp_path / "other")
    r = cli(capsys, "verify", att, "--key", tmp_path / "other" / "llmguard.pub")
    assert r.code == 1 and "no signature by this key" in r.out
    assert cli(capsys, "verify", tmp_path / "missing.json", "--key", project.public_key).code == 2
    r = cli(capsys, "verify", att, "--key", project.private_key)
    assert r.code == 2 and "private key" in r.err
    edited = tmp_path / "edited.json"
    edited.write_text(att.read_text().replace('"payload":"', '"payload":"A', 1))
    assert cli(capsys, "verify", edited, "--key", project.public_key).code == 1


def test_every_single_byte_change_fails_verification(project: Project, signed_run: Path) -> None:
    """Flip each byte of the envelope file, then each byte of the payload; none may verify."""
    public, keyid = load_public(project.public_key)
    data = (signed_run / "attestation.dsse.json").read_bytes()
    verify_attestation(data, public, keyid)  # the original verifies
    survivors = []
    buf = bytearray(data)
    for i in range(len(buf)):
        buf[i] ^= 0x01
        try:
            verify_attestation(bytes(buf), public, keyid)
            survivors.append(i)
        except VerificationError:
            pass
        buf[i] ^= 0x01
    assert survivors == [], f"envelope changes at {survivors[:5]} still verify"
    envelope = json.loads(data)
    payload = bytearray(base64.b64decode(envelope["payload"]))
    for i in range(len(payload)):
        payload[i] ^= 0x01
        forged = dict(envelope, payload=base64.b64encode(bytes(payload)).decode())
        with pytest.raises(VerificationError):
            dsse.verify(forged, public, keyid)
        payload[i] ^= 0x01
    assert len(data) > 4000  # a real attestation, not a toy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_replacement_byte_at_any_position_fails(project: Project, signed_run: Path, data: st.DataObject) -> None:
    """Not just bit flips: any other byte anywhere (the file has no insignificant whitespace)."""
    public, keyid = load_public(project.public_key)
    blob = (signed_run / "attestation.dsse.json").read_bytes()
    assert not set(blob) & set(b" \t\r\n")
    i = data.draw(st.integers(0, len(blob) - 1), label="position")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != blob[i]), label="byte")
    with pytest.raises(VerificationError):
        verify_attestation(blob[:i] + bytes([byte]) + blob[i + 1 :], public, keyid)


def test_unsigned_run_says_so_and_its_attestation_never_verifies(
    project: Project,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLMGUARD_SIGNING_KEY", raising=False)
    out = tmp_path / "out"
    r = cli(capsys, "run", project.suite(), "--out", out, "--no-audit-log")
    assert r.code == 0 and "UNSIGNED" in r.out
    assert envelope_of(out)["signatures"] == []
    assert json.loads((out / "report.json").read_text())["signed"] is False
    r = cli(capsys, "verify", out / "attestation.dsse.json", "--key", project.public_key)
    assert r.code == 1 and "unsigned" in r.out


def test_dev_key_is_labelled_and_does_not_satisfy_require_signature(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = project.suite("strict.yaml", extra="policy: {require_signature: true}\n")
    r = cli(capsys, "run", suite, "--out", tmp_path / "dev", "--dev-key", "--no-audit-log")
    assert r.code == 1, r.out
    assert "THROW-AWAY DEVELOPMENT KEY" in r.out
    report = json.loads((tmp_path / "dev" / "report.json").read_text())
    assert report["signed"] is False and report["signing"]["development_key"] is True
    assert any("policy.require_signature" in reason for reason in report["decision"]["reasons"])
    r = cli(
        capsys,
        "verify",
        tmp_path / "dev" / "attestation.dsse.json",
        "--key",
        tmp_path / "dev" / "development-key.pub",
    )
    assert r.code == 1 and "not trusted" in r.out and "development key" in r.out
    r = cli(
        capsys,
        "verify",
        tmp_path / "dev" / "attestation.dsse.json",
        "--key",
        tmp_path / "dev" / "development-key.pub",
        "--allow-dev-key",
    )
    assert r.code == 0 and "UNTRUSTED" in r.out and "throw-away development key" in r.out
    r = cli(capsys, "run", suite, "--out", tmp_path / "unsigned", "--no-audit-log")
    assert r.code == 1 and "require_signature" in r.out
    r = cli(
        capsys,
        "run",
        suite,
        "--out",
        tmp_path / "signed",
        "--key",
        project.private_key,
        "--no-audit-log",
    )
    assert r.code == 0, r.out


def test_signing_key_from_the_environment_is_a_path(
    project: Project,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMGUARD_SIGNING_KEY", str(project.private_key))
    r = cli(capsys, "run", project.suite(), "--out", tmp_path / "env", "--no-audit-log", "--quiet")
    assert r.code == 0
    assert json.loads((tmp_path / "env" / "report.json").read_text())["signed"] is True
    pem = project.private_key.read_text()
    monkeypatch.setenv("LLMGUARD_SIGNING_KEY", pem)
    r = cli(capsys, "run", project.suite(), "--out", tmp_path / "bad", "--no-audit-log")
    assert r.code == 2 and "path of a key file" in r.err
    assert pem.splitlines()[1] not in r.out + r.err


def test_folder_digest_matches_the_documented_coreutils_pipeline(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 10)
    (folder / "B.txt").write_text("upper case sorts first in byte order")
    pipeline = (
        "cd \"$1\" && find . -type f -printf '%P\\n' | LC_ALL=C sort "
        "| xargs -d '\\n' sha256sum | sha256sum | cut -d' ' -f1"
    )
    shell = subprocess.run(
        ["bash", "-c", pipeline, "_", str(folder)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert shell == sha256_path(folder)[0]


def test_environment_names_the_cpu_and_the_gpu_driver_when_present() -> None:
    import sys

    from llmguard_ops import environment

    facts = environment.collect(Path.cwd())
    if Path("/proc/cpuinfo").exists():
        assert facts["processor"]
    assert "gpu_driver" in facts
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        assert facts["gpu"] == [] and facts["gpu_driver"] is None


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("shutil").which("nvidia-smi"), reason="needs an NVIDIA GPU and nvidia-smi")
def test_gpu_driver_is_recorded_on_a_cuda_machine() -> None:
    import torch

    from llmguard_ops import environment

    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    facts = environment.collect(Path.cwd())
    assert facts["gpu"] and facts["gpu_driver"]


class _ArtifactPlugin:
    """A third-party-style check that writes a file and lists it as an artifact."""

    @staticmethod
    def _run(ctx: Any, params: Any) -> Any:
        from llmguard_ops import CheckOutput

        path = ctx.artifact_dir / "table.csv"
        path.write_text("a,b\n1,2\n")
        return CheckOutput(metrics={}, artifacts={"table": str(path)})

    @hookimpl
    def llmguard_register_checks(self, register: Any) -> None:
        from pydantic import BaseModel, ConfigDict

        class Params(BaseModel):
            model_config = ConfigDict(extra="forbid")

        register(CheckDefinition("demo.artifact", self._run, Params, (), "writes a table"))


def test_listed_artifacts_are_digested_and_stale_files_are_not(project: Project, tmp_path: Path) -> None:
    import warnings

    import llmguard_ops

    suite = project.suite(folder=tmp_path, extra="  - {id: table, uses: demo.artifact}\n")
    out = tmp_path / "out"
    (out / "artifacts" / "old").mkdir(parents=True)
    (out / "artifacts" / "old" / "stale.png").write_bytes(b"from an earlier run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        outcome = llmguard_ops.run(
            suite, out, objects=[("artifact-plugin", _ArtifactPlugin())], key=project.private_key
        )
    assert outcome.report.decision.decision.value == "PROMOTE"
    outputs = statement_of(out)["predicate"]["outputs"]
    table = out / "artifacts" / "table" / "table.csv"
    assert outputs["artifacts/table/table.csv"] == hashlib.sha256(table.read_bytes()).hexdigest()
    assert not any("stale" in name for name in outputs)
