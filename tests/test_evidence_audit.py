"""The audit log: chain, signed head, the first broken position, concurrent appends."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evidence_support import Project, cli, make_project
from llmguard_ops.evidence import audit
from llmguard_ops.evidence.keys import SigningKey, generate, load_private, load_public


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    private, public, _ = generate(tmp_path_factory.mktemp("auditkeys"))
    return private, public


def fill(log: Path, signer: SigningKey | None, n: int = 5) -> None:
    for i in range(n):
        audit.append(log, {"run_id": f"run-{i + 1}", "decision": "PROMOTE", "suite": {"name": "s"}}, signer)


def lines(log: Path) -> list[bytes]:
    return log.read_bytes().splitlines()


def write(log: Path, rows: list[bytes]) -> None:
    log.write_bytes(b"".join(r + b"\n" for r in rows))


@pytest.fixture
def log(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    path = tmp_path / ".llmguard" / "audit.jsonl"
    fill(path, load_private(keys[0]))
    return path


def check(log: Path, keys: tuple[Path, Path]) -> audit.AuditVerdict:
    return audit.verify(log, *load_public(keys[1]))


def test_intact_log_verifies_and_chains(log: Path, keys: tuple[Path, Path]) -> None:
    verdict = check(log, keys)
    assert verdict.intact and verdict.count == 5
    rows = [json.loads(r) for r in lines(log)]
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_sha256"] == "0" * 64
    assert rows[3]["prev_sha256"] == hashlib.sha256(lines(log)[2]).hexdigest()


def test_an_edited_entry_is_named(log: Path, keys: tuple[Path, Path]) -> None:
    rows = lines(log)
    rows[2] = rows[2].replace(b"PROMOTE", b"BLOCK")
    write(log, rows)
    verdict = check(log, keys)
    assert not verdict.intact and verdict.position == 3 and "entry 3 was changed" in str(verdict.problem)


def test_a_deleted_entry_is_named(log: Path, keys: tuple[Path, Path]) -> None:
    rows = lines(log)
    del rows[1]
    write(log, rows)
    verdict = check(log, keys)
    assert not verdict.intact and verdict.position == 2 and "removed" in str(verdict.problem)


def test_reordered_entries_are_named(log: Path, keys: tuple[Path, Path]) -> None:
    rows = lines(log)
    rows[3], rows[4] = rows[4], rows[3]
    write(log, rows)
    verdict = check(log, keys)
    assert not verdict.intact and verdict.position == 4


def test_truncation_is_detected_by_the_signed_head(log: Path, keys: tuple[Path, Path]) -> None:
    write(log, lines(log)[:3])
    verdict = check(log, keys)
    assert not verdict.intact and verdict.position == 4 and "truncated" in str(verdict.problem)


def test_an_edited_last_entry_is_detected_by_the_head(log: Path, keys: tuple[Path, Path]) -> None:
    rows = lines(log)
    rows[-1] = rows[-1].replace(b"run-5", b"run-X")
    write(log, rows)
    verdict = check(log, keys)
    assert not verdict.intact and verdict.position == 5


def test_a_rewritten_head_needs_the_key(log: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    write(log, lines(log)[:3])
    # the attacker rewrites the head for the truncated log: unsigned, or signed by another key
    last = hashlib.sha256(lines(log)[-1]).hexdigest()
    audit._write_head(log, 3, last, None)
    assert audit.verify(log).intact  # without a key only the chain and the head's shape can be checked
    assert "not checked" in audit.verify(log).notes[0]
    verdict = check(log, keys)
    assert not verdict.intact and "unsigned" in str(verdict.problem)
    other = load_private(generate(tmp_path / "other")[0])
    audit._write_head(log, 3, last, other)
    verdict = check(log, keys)
    assert not verdict.intact and "no signature by this key" in str(verdict.problem)
    (log.parent / "audit.jsonl.head").unlink()
    assert not check(log, keys).intact


def test_garbage_and_incomplete_lines(log: Path, keys: tuple[Path, Path]) -> None:
    data = log.read_bytes()
    log.write_bytes(data[:-10])  # a half-written last line
    verdict = check(log, keys)
    assert not verdict.intact and verdict.position == 5 and "incomplete" in str(verdict.problem)
    rows = data.splitlines()
    rows[0] = b"{not json"
    write(log, rows)
    assert check(log, keys).position == 1
    with pytest.raises(audit.AuditError, match=r"refusing to append.*incomplete"):
        log.write_bytes(data[:-10])
        audit.append(log, {"run_id": "x"})


def test_audit_verify_cli_exit_codes(
    log: Path, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    r = cli(capsys, "audit", "verify", "--log", log, "--key", keys[1])
    assert r.code == 0 and "intact, 5 entries" in r.out
    rows = lines(log)
    rows[1] = rows[1].replace(b"run-2", b"run-9")
    write(log, rows)
    r = cli(capsys, "audit", "verify", "--log", log, "--key", keys[1])
    assert r.code == 1 and "broken at entry 2" in r.out
    assert cli(capsys, "audit", "verify", "--log", tmp_path / "none.jsonl").code == 2


APPENDER = """
import sys
from pathlib import Path
from llmguard_ops.evidence import audit
from llmguard_ops.evidence.keys import load_private
key = load_private(Path(sys.argv[2]))
for i in range(int(sys.argv[3])):
    audit.append(Path(sys.argv[1]), {"run_id": f"{sys.argv[4]}-{i}", "decision": "PROMOTE"}, key)
"""


def test_two_processes_appending_at_once_keep_the_chain(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    log = tmp_path / "audit.jsonl"
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(log), str(keys[0]), "20", name]) for name in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    verdict = check(log, keys)
    assert verdict.intact and verdict.count == 40
    runs = {json.loads(r)["run_id"] for r in lines(log)}
    assert len(runs) == 40


def test_threads_appending_at_once_keep_the_chain(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    log = tmp_path / "audit.jsonl"
    signer = load_private(keys[0])
    threads = [threading.Thread(target=fill, args=(log, signer, 15)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = check(log, keys)
    assert verdict.intact and verdict.count == 60


def test_runs_append_entries_that_name_their_attestation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project: Project = make_project(tmp_path)
    monkeypatch.chdir(tmp_path)  # the default log is .llmguard/audit.jsonl under the current folder
    for name in ("one", "two"):
        r = cli(capsys, "run", project.suite(), "--out", tmp_path / name, "--key", project.private_key)
        assert r.code == 0 and "audit: entry" in r.out
    log = tmp_path / ".llmguard" / "audit.jsonl"
    rows = [json.loads(r) for r in lines(log)]
    assert [r["seq"] for r in rows] == [1, 2]
    for row, name in zip(rows, ("one", "two"), strict=True):
        attestation = (tmp_path / name / "attestation.dsse.json").read_bytes()
        assert row["attestation_sha256"] == hashlib.sha256(attestation).hexdigest()
        assert row["report_sha256"] == hashlib.sha256((tmp_path / name / "report.json").read_bytes()).hexdigest()
        assert row["decision"] == "PROMOTE" and row["signed"] is True
        assert row["time"].endswith("Z") and row["suite"]["name"] == "evidence-unit"
    r = cli(capsys, "audit", "verify", "--key", project.public_key)
    assert r.code == 0 and "intact, 2 entries" in r.out
