"""Signed approvals of a REVIEW: approve, the trust file, and verify --approvals."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from evidence_support import Project, cli, make_project
from llmguard_ops.evidence.keys import generate

REVIEW_EXTRA = """\
  - id: strict
    uses: performance.classification
    with: {model: candidate, dataset: current, n_resamples: 30}
    gate: {accuracy: {min: 0.999}}
    severity: warning
policy:
  approvals: {required: 2, roles: [ml-lead, risk], distinct_people: true,
              two_person_rule: true, valid_for_days: 30}
"""


class People:
    """Reviewer key pairs and a trust file listing them and the run's key."""

    def __init__(self, project: Project, root: Path) -> None:
        self.root = root
        self.keys: dict[str, tuple[Path, Path]] = {}
        for who in ("ada", "bob", "eve", "old"):
            private, public, _ = generate(root / who)
            self.keys[who] = (private, public)
        self.trust = root / "trust.yaml"
        self.trust.write_text(
            "keys:\n"
            f"  - {{name: CI runner, public_key: {project.public_key}, roles: [runner]}}\n"
            f"  - {{name: Ada, public_key: {self.keys['ada'][1]}, roles: [ml-lead]}}\n"
            f"  - {{name: Bob, public_key: {self.keys['bob'][1]}, roles: [risk],\n"
            "      not_before: 2020-01-01, not_after: 2100-01-01}\n"
            # a rotated key: valid only until yesterday
            f"  - {{name: Bob, public_key: {self.keys['old'][1]}, roles: [risk],\n"
            f"      not_after: {(dt.date.today() - dt.timedelta(days=1)).isoformat()}}}\n",
            encoding="utf-8",
        )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("approvals"))


@pytest.fixture(scope="module")
def people(project: Project) -> People:
    return People(project, project.root / "people")


def _run(project: Project, name: str, extra: str = REVIEW_EXTRA) -> Path:
    from llmguard_ops.cli import main

    out = project.root / name
    code = main(
        [
            "run",
            str(project.suite(name=f"{name}.yaml", extra=extra)),
            "--out",
            str(out),
            "--key",
            str(project.private_key),
            "--no-audit-log",
            "--quiet",
        ]
    )
    assert code == 3, "the suite's warning gate fails, so the run asks for REVIEW"
    return out / "attestation.dsse.json"


@pytest.fixture(scope="module")
def review(project: Project) -> Path:
    return _run(project, "review-out")


def approve(
    capsys: pytest.CaptureFixture[str],
    attestation: Path,
    key: Path,
    name: str,
    role: str,
    out: Path,
    *extra: str,
) -> Path:
    r = cli(
        capsys, "approve", attestation, "--key", key, "--as", name, "--role", role,
        "--reason", f"{name} read the report", "--out", out, *extra,
    )  # fmt: skip
    assert r.code == 0, r.err
    written = Path(r.out.splitlines()[0].split(": ", 1)[1])
    assert written.is_file()
    return written


def verify(capsys: pytest.CaptureFixture[str], project: Project, people: People, att: Path, folder: Path) -> object:
    return cli(
        capsys, "verify", att, "--key", project.public_key, "--artifact", project.model,
        "--approvals", folder, "--trust", people.trust,
    )  # fmt: skip


def test_none_one_two_approvals(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "approvals"
    folder.mkdir()
    r = verify(capsys, project, people, review, folder)
    assert r.code == 1 and "0 of the 2 approvals required are valid" in r.out
    approve(capsys, review, people.keys["ada"][0], "Ada", "ml-lead", folder)
    r = verify(capsys, project, people, review, folder)
    assert r.code == 1 and "1 of the 2" in r.out and "no valid approval from the role risk" in r.out
    approve(capsys, review, people.keys["bob"][0], "Bob", "risk", folder)
    r = verify(capsys, project, people, review, folder)
    assert r.code == 0, r.out
    assert "approved by Ada (ml-lead)" in r.out and "approved by Bob (risk)" in r.out
    assert "'Bob read the report'" in r.out and "run signed by CI runner" in r.out
    # without --approvals, the REVIEW is still not a promotion
    plain = cli(capsys, "verify", review, "--key", project.public_key, "--artifact", project.model)
    assert plain.code == 1 and "the decision is REVIEW" in plain.out


def _with_ada(capsys: pytest.CaptureFixture[str], people: People, review: Path, folder: Path) -> None:
    folder.mkdir()
    approve(capsys, review, people.keys["ada"][0], "Ada", "ml-lead", folder)


def _bob_approval_via(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path,
    folder: Path, case: str,
) -> str:  # fmt: skip
    """Put Bob's approval, spoiled as ``case`` says, beside Ada's; return the reason expected."""
    if case == "other-attestation":
        other = _run(project, "other-out")
        approve(capsys, other, people.keys["bob"][0], "Bob", "risk", folder)
        return "it is for another attestation"
    if case == "expired":
        path = approve(capsys, review, people.keys["bob"][0], "Bob", "risk", folder,
                       "--expires", (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat())  # fmt: skip
        import time

        time.sleep(2.5)
        assert path.is_file()
        return "expired at"
    if case == "outside-trust":
        approve(capsys, review, people.keys["eve"][0], "Bob", "risk", folder)
        return "signed by a key outside the trust file"
    if case == "own-signer":
        # grant the run's signer the risk role too, so only the two-person rule refuses it
        text = people.trust.read_text().replace("roles: [runner]", "roles: [runner, risk]")
        people.trust.write_text(text)
        approve(capsys, review, project.private_key, "CI runner", "risk", folder)
        return "signed by the run's own signer (two-person rule)"
    if case == "byte-flipped":
        path = approve(capsys, review, people.keys["bob"][0], "Bob", "risk", folder)
        data = bytearray(path.read_bytes())
        i = data.index(b'"payload":"') + 40
        data[i] = ord("A") if data[i] != ord("A") else ord("B")
        path.write_bytes(bytes(data))
        return "does not verify"
    if case == "rotated-key-after-expiry":
        approve(capsys, review, people.keys["old"][0], "Bob", "risk", folder)
        return "outside the key's validity"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    ["other-attestation", "expired", "outside-trust", "own-signer", "byte-flipped",
     "rotated-key-after-expiry"],
)  # fmt: skip
def test_a_spoiled_second_approval_does_not_count(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path,
    tmp_path: Path, case: str,
) -> None:  # fmt: skip
    trust_text = people.trust.read_text()
    folder = tmp_path / "approvals"
    _with_ada(capsys, people, review, folder)
    try:
        expected = _bob_approval_via(capsys, project, people, review, folder, case)
        r = verify(capsys, project, people, review, folder)
    finally:
        people.trust.write_text(trust_text)
    assert r.code == 1, r.out
    assert "NOT COUNTED" in r.out and expected in r.out, r.out
    assert "approved by Ada (ml-lead)" in r.out


def test_a_rejection_by_a_required_role_wins(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "approvals"
    _with_ada(capsys, people, review, folder)
    approve(capsys, review, people.keys["bob"][0], "Bob", "risk", folder)
    assert verify(capsys, project, people, review, folder).code == 0
    approve(capsys, review, people.keys["ada"][0], "Ada", "ml-lead", folder, "--reject")
    r = verify(capsys, project, people, review, folder)
    assert r.code == 1 and "rejected by Ada (ml-lead): Ada read the report" in r.out


def test_same_person_twice_and_a_claimed_name_do_not_count(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "approvals"
    _with_ada(capsys, people, review, folder)
    import time

    time.sleep(1.1)  # a second approval, not the same bytes again (ed25519 is deterministic)
    approve(capsys, review, people.keys["ada"][0], "Ada", "ml-lead", folder)
    approve(capsys, review, people.keys["ada"][0], "Bob", "risk", folder)
    assert len(list(folder.glob("*.json"))) == 3
    r = verify(capsys, project, people, review, folder)
    assert r.code == 1
    assert "Ada already approved (distinct people)" in r.out
    assert "it names 'Bob', but the key belongs to 'Ada'" in r.out


def test_a_run_key_outside_the_trust_file_fails(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    trust = tmp_path / "trust.yaml"
    trust.write_text(f"keys:\n  - {{name: Ada, public_key: {people.keys['ada'][1]}, roles: [ml-lead]}}\n")
    r = cli(capsys, "verify", review, "--key", project.public_key, "--trust", trust)
    assert r.code == 1 and "the run's key" in r.out and "is not in the trust file" in r.out


def test_a_suite_without_an_approval_policy_cannot_be_approved(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, tmp_path: Path
) -> None:
    extra = REVIEW_EXTRA.split("policy:")[0]
    att = _run(project, "nopolicy-out", extra=extra)
    folder = tmp_path / "approvals"
    _with_ada(capsys, people, att, folder)
    approve(capsys, att, people.keys["bob"][0], "Bob", "risk", folder)
    r = verify(capsys, project, people, att, folder)
    assert r.code == 1 and "sets no policy.approvals" in r.out


def test_malformed_trust_file_is_a_located_error(
    capsys: pytest.CaptureFixture[str], project: Project, review: Path, tmp_path: Path
) -> None:
    trust = tmp_path / "trust.yaml"
    trust.write_text("keys:\n  - {name: Ada, public_key: nowhere.pub, roles: [ml-lead], colour: red}\n")
    r = cli(capsys, "verify", review, "--key", project.public_key, "--trust", trust)
    assert r.code == 2 and f"{trust}: keys[0]: unknown key(s) colour" in r.err


def test_approve_appends_to_the_audit_log(
    capsys: pytest.CaptureFixture[str], people: People, review: Path, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    path = approve(capsys, review, people.keys["ada"][0], "Ada", "ml-lead", tmp_path / "a",
                   "--audit-log", str(log))  # fmt: skip
    entry = json.loads(log.read_text().splitlines()[-1])
    import hashlib

    assert entry["kind"] == "approval" and entry["approver"] == "Ada"
    assert entry["approval_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["attestation_sha256"] == hashlib.sha256(review.read_bytes()).hexdigest()
    r = cli(capsys, "audit", "verify", "--log", log, "--key", people.keys["ada"][1])
    assert r.code == 0, r.out + r.err


def test_the_approval_verifies_with_securesystemslib(
    capsys: pytest.CaptureFixture[str], people: People, review: Path, tmp_path: Path
) -> None:
    import copy

    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey

    from llmguard_ops.evidence.keys import load_public

    path = approve(capsys, review, people.keys["bob"][0], "Bob", "risk", tmp_path / "a")
    public, keyid = load_public(people.keys["bob"][1])
    envelope = json.loads(path.read_text())
    accepted = Envelope.from_dict(copy.deepcopy(envelope)).verify([SSlibKey.from_crypto(public, keyid=keyid)], 1)
    assert list(accepted) == [keyid]
    shutil.rmtree(tmp_path / "a")


def test_the_lock_covers_the_approval_policy(project: Project, tmp_path: Path) -> None:
    from llmguard_ops.evidence.lock import changes, terms
    from llmguard_ops.loading import load_suite
    from llmguard_ops.plugins import get_plugin_manager

    registry = get_plugin_manager().registry()
    strict = terms(load_suite(project.suite(name="a.yaml", extra=REVIEW_EXTRA), registry))
    looser = REVIEW_EXTRA.replace("required: 2", "required: 1")
    relaxed = terms(load_suite(project.suite(name="b.yaml", extra=looser), registry))
    assert changes(strict, relaxed) == ["policy.approvals.required: 2 → 1"]
    plain = terms(load_suite(project.suite(name="c.yaml"), registry))
    assert "approvals" not in plain["policy"]  # a lock written before the key existed still matches


def test_json_output_lists_each_approval(
    capsys: pytest.CaptureFixture[str], project: Project, people: People, review: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "approvals"
    _with_ada(capsys, people, review, folder)
    args = ["verify", review, "--key", project.public_key, "--artifact", project.model,
            "--approvals", folder, "--trust", people.trust, "--json"]  # fmt: skip
    r = cli(capsys, *args)
    body = json.loads(r.out)
    assert r.code == 1 and body["valid"] is False and "1 of the 2" in body["reason"]
    [line] = body["approvals"]
    assert line["name"] == "Ada" and line["role"] == "ml-lead" and line["counted"] is True
    approve(capsys, review, people.keys["bob"][0], "Bob", "risk", folder)
    r = cli(capsys, *args)
    body = json.loads(r.out)
    assert r.code == 0 and body["valid"] is True and body["decision"] == "REVIEW"
    assert sorted(a["name"] for a in body["approvals"] if a["counted"]) == ["Ada", "Bob"]
    assert body["accepted_by_flag"] == []  # accepted by approvals, not by --allow-decision
