"""Audit-log tampering is never laundered by the next signed run.

Each edit an attacker who holds the log can make (without the signing key) is followed
by a new signed run: the run refuses to append (exit 2) and ``audit verify`` still says
broken. A truncation hidden by restoring an older signed head is caught against a head
published earlier (``audit head --out`` / ``audit verify --head``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence_support import Project, cli, make_project
from llmguard_ops.evidence import audit
from llmguard_ops.evidence.keys import load_private
from llmguard_ops.evidence.statement import canonical_bytes


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("trust-audit"))


DECISIONS = ["PROMOTE", "BLOCK", "PROMOTE", "BLOCK"]


@pytest.fixture
def log(project: Project, tmp_path: Path) -> Path:
    """A log of four entries, signed head, written as runs write it."""
    path = tmp_path / "audit.jsonl"
    signer = load_private(project.private_key)
    for i, decision in enumerate(DECISIONS, 1):
        audit.append(path, {"run_id": f"run-{i}", "decision": decision, "signed": True}, signer)
    return path


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_bytes().splitlines()]


def rechain(log: Path, rows: list[dict[str, Any]]) -> None:
    """What an attacker without the key can do: a consistent chain and an unsigned head."""
    prev, lines = audit.GENESIS, []
    for i, row in enumerate(rows, 1):
        line = canonical_bytes({**row, "seq": i, "prev_sha256": prev})
        lines.append(line)
        prev = audit.sha256_hex(line)
    log.write_bytes(b"".join(line + b"\n" for line in lines))
    audit._write_head(log, len(lines), prev, None)


def promote_block(log: Path) -> None:
    rows = entries(log)
    rows[1]["decision"] = "PROMOTE"
    rechain(log, rows)


def promote_block_keep_head(log: Path) -> None:
    data = log.read_bytes().replace(b'"decision":"BLOCK"', b'"decision":"PROMOTE"', 1)
    log.write_bytes(data)


def truncate(log: Path) -> None:
    log.write_bytes(b"".join(line + b"\n" for line in log.read_bytes().splitlines()[:-1]))


def truncate_and_rechain(log: Path) -> None:
    rechain(log, entries(log)[:-1])


def delete_middle(log: Path) -> None:
    rows = entries(log)
    del rows[1]
    rechain(log, rows)


def reorder(log: Path) -> None:
    rows = entries(log)
    rows[0], rows[1] = rows[1], rows[0]
    rechain(log, rows)


def reorder_raw(log: Path) -> None:
    lines = log.read_bytes().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    log.write_bytes(b"".join(line + b"\n" for line in lines))


def append_forged(log: Path) -> None:
    rechain(log, [*entries(log), {"run_id": "forged", "decision": "PROMOTE", "signed": True}])


def append_forged_keep_head(log: Path) -> None:
    last = log.read_bytes().splitlines()[-1]
    line = canonical_bytes({"run_id": "forged", "decision": "PROMOTE", "seq": 5, "prev_sha256": audit.sha256_hex(last)})
    with open(log, "ab") as fh:
        fh.write(line + b"\n")


def delete_log(log: Path) -> None:
    log.unlink()


def empty_log(log: Path) -> None:
    log.write_bytes(b"")


def delete_head(log: Path) -> None:
    audit.head_path(log).unlink()


def unsigned_head(log: Path) -> None:
    rechain(log, entries(log))  # same entries, head replaced by an unsigned one


EDITS: dict[str, Callable[[Path], None]] = {
    "BLOCK→PROMOTE, re-chained": promote_block,
    "BLOCK→PROMOTE in place": promote_block_keep_head,
    "truncated": truncate,
    "truncated and re-chained": truncate_and_rechain,
    "entry deleted, re-chained": delete_middle,
    "reordered, re-chained": reorder,
    "reordered in place": reorder_raw,
    "forged entry appended, re-chained": append_forged,
    "forged entry appended": append_forged_keep_head,
    "log deleted": delete_log,
    "log emptied": empty_log,
    "head deleted": delete_head,
    "head replaced by an unsigned one": unsigned_head,
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_every_edit_is_still_detected_after_a_new_signed_run(
    edit: str, project: Project, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    EDITS[edit](log)
    before = log.read_bytes() if log.exists() else None
    r = cli(
        capsys,
        "run",
        project.suite(folder=tmp_path),
        "--out",
        tmp_path / "out",
        "--key",
        project.private_key,
        "--audit-log",
        log,
        "--quiet",
    )
    assert r.code == 2, r.out + r.err
    assert "refusing to append" in r.err and "llmguard audit seal" in r.err
    assert not (tmp_path / "out").exists()  # refused before any check ran
    assert (log.read_bytes() if log.exists() else None) == before  # nothing appended
    if log.exists():
        r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key)
        assert r.code == 1 and "broken" in r.out


def test_the_library_append_refuses_too(project: Project, log: Path) -> None:
    promote_block(log)
    with pytest.raises(audit.AuditError, match="refusing to append"):
        audit.append(log, {"run_id": "next"}, load_private(project.private_key))


def test_a_run_without_the_key_cannot_replace_the_signed_head(
    project: Project, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in ([], ["--dev-key"]):
        r = cli(
            capsys,
            "run",
            project.suite(folder=tmp_path),
            "--out",
            tmp_path / "out",
            "--audit-log",
            log,
            *flags,
        )
        assert r.code == 2 and "head is signed" in r.err
    assert len(entries(log)) == 4


def test_a_truncation_with_a_rolled_back_head_is_caught_by_a_published_head(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "audit.jsonl"
    signer = load_private(project.private_key)
    for i in range(3):
        audit.append(log, {"run_id": f"run-{i + 1}", "decision": "PROMOTE"}, signer)
    old_log, old_head = log.read_bytes(), audit.head_path(log).read_bytes()  # the attacker's copies
    audit.append(log, {"run_id": "run-4", "decision": "BLOCK"}, signer)
    published = tmp_path / "published.head"
    r = cli(capsys, "audit", "head", "--log", log, "--key", project.public_key, "--out", published)
    assert r.code == 0 and "4 entries" in r.out
    # the BLOCK entry is cut off and the older signed head put back: locally consistent
    log.write_bytes(old_log)
    audit.head_path(log).write_bytes(old_head)
    r = cli(
        capsys,
        "run",
        project.suite(folder=tmp_path),
        "--out",
        tmp_path / "out",
        "--key",
        project.private_key,
        "--audit-log",
        log,
        "--quiet",
    )
    assert r.code == 0  # the log itself cannot show it ...
    r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key, "--head", published)
    assert r.code == 1 and "entry 4 is not the one the published head recorded" in r.out
    log.write_bytes(old_log)
    audit.head_path(log).write_bytes(old_head)
    r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key, "--head", published)
    assert r.code == 1 and "published head recorded 4" in r.out
    # a forged published head does not verify
    forged = tmp_path / "forged.head"
    forged.write_bytes(old_head.replace(b'"sig":"', b'"sig":"A', 1))
    r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key, "--head", forged)
    assert r.code == 1 and "published head does not verify" in r.out


def test_an_intact_log_extends_its_published_head(
    project: Project, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = tmp_path / "published.head"
    assert cli(capsys, "audit", "head", "--log", log, "--out", published).code == 0
    audit.append(log, {"run_id": "run-5", "decision": "PROMOTE"}, load_private(project.private_key))
    r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key, "--head", published)
    assert r.code == 0 and "extends the published head (4 entries)" in r.out


def test_a_broken_log_is_sealed_and_a_new_one_links_it(
    project: Project, log: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    promote_block(log)
    old_bytes = log.read_bytes()
    r = cli(capsys, "audit", "seal", "--log", log, "--key", project.private_key, "--reason", "INC-7")
    assert r.code == 0 and "broken" in r.out
    sealed = [p for p in tmp_path.iterdir() if p.name.startswith("audit.sealed-") and p.suffix == ".jsonl"]
    assert len(sealed) == 1 and sealed[0].read_bytes() == old_bytes
    first = entries(log)[0]
    assert first["kind"] == "seal" and first["sealed_log"] == sealed[0].name
    assert first["sealed_sha256"] == audit.sha256_hex(old_bytes)
    assert first["sealed_intact"] is False and first["reason"] == "INC-7"
    r = cli(
        capsys,
        "run",
        project.suite(folder=tmp_path),
        "--out",
        tmp_path / "out",
        "--key",
        project.private_key,
        "--audit-log",
        log,
        "--quiet",
    )
    assert r.code == 0, r.err
    r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key)
    assert r.code == 0 and "intact, 2 entries" in r.out
    # the sealed log keeps its evidence: still broken, never re-signed
    r = cli(capsys, "audit", "verify", "--log", sealed[0], "--key", project.public_key)
    assert r.code == 1


def test_an_unsigned_log_can_be_sealed_into_a_signed_one(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "audit.jsonl"
    audit.append(log, {"run_id": "unsigned-1", "decision": "PROMOTE"})
    signer = load_private(project.private_key)
    with pytest.raises(audit.AuditError, match="refusing to append"):
        audit.append(log, {"run_id": "signed-1"}, signer)  # an unsigned head is no trust root
    target, entry = audit.seal(log, signer)
    assert target.exists() and entry["sealed_intact"] is False  # the head was not signed
    audit.append(log, {"run_id": "signed-1"}, signer)
    r = cli(capsys, "audit", "verify", "--log", log, "--key", project.public_key)
    assert r.code == 0 and "intact, 2 entries" in r.out


def test_a_deleted_log_is_sealed_from_its_head(project: Project, log: Path) -> None:
    signer = load_private(project.private_key)
    log.unlink()
    with pytest.raises(audit.AuditError, match="missing or empty"):
        audit.append(log, {"run_id": "next"}, signer)
    target, entry = audit.seal(log, signer, reason="log deleted")
    assert target.read_bytes() == b"" and entry["sealed_head_sha256"] is not None
    assert entry["sealed_intact"] is False
    audit.append(log, {"run_id": "next"}, signer)
    assert audit.verify(log, signer.public, signer.keyid).intact
