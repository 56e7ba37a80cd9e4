"""OpenSSF model signatures, verified before a model is loaded (model_signing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence_support import Project, cli, make_project

pytest.importorskip("model_signing", reason="needs llmguard-ops[evidence]")


def _ec_keys(folder: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())  # model_signing takes EC keys only
    private, public = folder / "signer.key", folder / "signer.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return private, public


@pytest.fixture()
def signed(tmp_path: Path) -> tuple[Project, Path, Path]:
    """A project whose model folder is signed with model_signing (the library, not this project)."""
    import shutil

    from model_signing import signing

    project = make_project(tmp_path)
    folder = tmp_path / "model-dir"
    folder.mkdir()
    shutil.copy(project.model, folder / "model.joblib")
    (folder / "config.json").write_text('{"threshold": 0.5}')
    private, public = _ec_keys(tmp_path)
    bundle = tmp_path / "model.sig"
    signing.Config().use_elliptic_key_signer(private_key=private).sign(folder, bundle)
    return project, folder, public


def _suite(project: Project, folder: Path, signature: str, policy: str = "") -> Path:
    path = project.suite(extra=policy)
    text = path.read_text().replace(
        f"candidate: {{loader: sklearn, path: {project.model}}}",
        f"candidate: {{loader: sklearn, path: {folder / 'model.joblib'}{signature}}}",
    )
    path.write_text(text)
    return path


def test_a_signed_file_runs_and_a_changed_one_is_refused_before_any_check(
    capsys: pytest.CaptureFixture[str], signed: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, folder, public = signed
    from model_signing import signing

    # sign the model file itself (the suite's path), with the same library
    private = tmp_path / "signer.key"
    signing.Config().use_elliptic_key_signer(private_key=private).sign(folder / "model.joblib", tmp_path / "file.sig")
    suite = _suite(project, folder, f", signature: {{path: {tmp_path / 'file.sig'}, public_key: {public}}}")
    out = tmp_path / "out"
    r = cli(capsys, "run", suite, "--out", out, "--no-audit-log", "--quiet")
    assert r.code == 0, r.err
    with open(folder / "model.joblib", "ab") as fh:
        fh.write(b"\0")  # the model changed after signing
    out2 = tmp_path / "out2"
    r = cli(capsys, "run", suite, "--out", out2, "--no-audit-log", "--quiet")
    assert r.code == 2 and "models.candidate.signature" in r.err
    assert "the model's signature does not verify" in r.err
    assert not (out2 / "report.json").exists()  # refused before any check ran


def test_a_signed_folder_verifies_and_a_changed_file_in_it_does_not(
    signed: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    from llmguard_ops.errors import SuiteError
    from llmguard_ops.evidence.model_signature import check
    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager

    project, folder, public = signed
    suite = _suite(project, folder, "")
    loaded = load_suite(suite, get_plugin_manager().registry())
    spec = loaded.suite.models["candidate"].model_copy(
        update={"path": str(folder), "signature": _signature(tmp_path / "model.sig", public)}
    )
    assert check(loaded, "candidate", spec) is True
    (folder / "config.json").write_text('{"threshold": 0.1}')
    with pytest.raises(SuiteError, match="does not verify"):
        check(loaded, "candidate", spec)


def _signature(bundle: Path, public: Path) -> object:
    from llmguard_ops.suite import ModelSignature

    return ModelSignature(path=str(bundle), public_key=str(public))


def test_policy_refuses_an_unsigned_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    project = make_project(tmp_path)
    suite = project.suite(extra="policy: {require_model_signature: true}\n")
    r = cli(capsys, "run", suite, "--out", tmp_path / "out", "--no-audit-log", "--quiet")
    assert r.code == 2 and "policy.require_model_signature" in r.err and "models.candidate" in r.err


def test_a_wrong_key_is_refused(
    capsys: pytest.CaptureFixture[str], signed: tuple[Project, Path, Path], tmp_path: Path
) -> None:
    project, folder, _public = signed
    (tmp_path / "other").mkdir()
    _, other = _ec_keys(tmp_path / "other")
    suite = _suite(project, folder, "")
    text = suite.read_text().replace(
        f"path: {folder / 'model.joblib'}}}",
        f"path: {folder}, signature: {{path: {tmp_path / 'model.sig'}, public_key: {other}}}}}",
    )
    suite.write_text(text)
    r = cli(capsys, "run", suite, "--out", tmp_path / "out", "--no-audit-log", "--quiet")
    assert r.code == 2 and "does not verify" in r.err, r.err


def test_the_documented_example_is_a_valid_suite_fragment() -> None:
    import re

    import yaml

    from llmguard_ops.suite import ModelSpec, Policy

    doc = (Path(__file__).resolve().parents[1] / "docs" / "evidence.md").read_text(encoding="utf-8")
    start = doc.index("## Model signatures")
    [example] = re.findall(r"```yml\n(.*?)```", doc[start : doc.index("\n## ", start + 3)], flags=re.S)
    data = yaml.safe_load(example)
    spec = ModelSpec.model_validate(data["models"]["candidate"])
    assert spec.signature is not None and spec.signature.public_key == "keys/model-signer.pub"
    assert Policy.model_validate(data["policy"]).require_model_signature is True
