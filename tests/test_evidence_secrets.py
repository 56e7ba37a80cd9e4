"""No environment secret and no private key material in any output, stdout or stderr."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from evidence_support import cli, make_project
from llmguard_ops.evidence.keys import load_private

SECRET_VAR = "LLMGUARD_TEST_PLANTED_TOKEN"


def needles(private_key: Path, secret: str) -> dict[str, bytes]:
    """Every spelling of the planted secret and of the private key an output could leak."""
    key = load_private(private_key).private
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    pem_body = private_key.read_text().splitlines()[1]
    return {
        "secret": secret.encode(),
        "key seed (hex)": raw.hex().encode(),
        "key seed (base64)": base64.b64encode(raw).rstrip(b"=").decode().encode(),
        "key seed (url base64)": base64.urlsafe_b64encode(raw).rstrip(b"=").decode().encode(),
        "private PEM": pem_body.encode(),
    }


def assert_clean(where: str, blob: bytes, found: dict[str, bytes]) -> None:
    for name, needle in found.items():
        assert needle not in blob, f"{name} leaked into {where}"


def test_planted_secret_and_key_never_reach_outputs(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = make_project(tmp_path)
    secret = "tok-" + secrets.token_hex(16)
    monkeypatch.setenv(SECRET_VAR, secret)
    work = tmp_path / "work"
    work.mkdir()
    suite = project.suite(
        folder=work,
        extra="waivers:\n  - {check: quality, approver: ops, reason: rotated token, expires: 2999-01-01}\n",
    )
    text = suite.read_text()
    text = text.replace(
        "name: evidence-unit\n",
        'name: evidence-unit\ndescription: "uses ${'
        + SECRET_VAR
        + '}"\nmetadata: {ticket_token: "${'
        + SECRET_VAR
        + '}"}\n',
    )
    text = text.replace(
        "path: " + str(project.model) + "}",
        "path: " + str(project.model) + ', options: {token: "${' + SECRET_VAR + '}"}}',
    )
    suite.write_text(text)
    assert "${" + SECRET_VAR + "}" in suite.read_text() and secret not in suite.read_text()

    # the CLI in this process with file-descriptor capture: every byte written to fd 1 and 2,
    # C-level output included
    from llmguard_ops.cli import main

    capfd.readouterr()
    code = main(
        [
            "run",
            str(suite),
            "--out",
            str(work / "out"),
            "--key",
            str(project.private_key),
            "--audit-log",
            str(work / "audit.jsonl"),
        ]
    )
    first = capfd.readouterr()
    assert code == 0, first.err
    found = needles(project.private_key, secret)
    assert_clean("stdout", first.out.encode(), found)
    assert_clean("stderr", first.err.encode(), found)

    # the same run in-process, with --json and a lock: more outputs to scan
    r = cli(capfd, "lock", suite, "--key", project.private_key, "--out", work / "suite.lock.json")
    assert r.code == 0
    r = cli(
        capfd,
        "run",
        suite,
        "--out",
        work / "out2",
        "--key",
        project.private_key,
        "--json",
        "--lock",
        work / "suite.lock.json",
        "--audit-log",
        work / "audit.jsonl",
    )
    assert r.code == 0
    assert_clean("stdout (--json)", r.out.encode(), found)
    assert_clean("stderr", r.err.encode(), found)
    r = cli(capfd, "verify", work / "out2" / "attestation.dsse.json", "--key", project.public_key)
    assert r.code == 0
    assert_clean("verify's stdout", r.out.encode(), found)

    import json

    report = json.loads((work / "out" / "report.json").read_text())
    assert report["suite"]["metadata"] == {"ticket_token": "${" + SECRET_VAR + "}"}  # as written

    files = [p for p in work.rglob("*") if p.is_file() and p != suite]
    names = {p.name for p in files}
    assert {
        "report.json",
        "attestation.dsse.json",
        "audit.jsonl",
        "audit.jsonl.head",
        "suite.lock.json",
    } <= names
    for path in files:
        data = path.read_bytes()
        assert_clean(str(path.relative_to(work)), data, found)
        if path.name == "attestation.dsse.json":
            payload = base64.b64decode(json.loads(data)["payload"])
            assert_clean(f"{path.relative_to(work)} (payload)", payload, found)
            assert b"${" + SECRET_VAR.encode() + b"}" in payload  # the suite as written is there
