"""The append-only audit log: one JSON line per run, hash-chained, with a signed head.

Each entry records the run id, the time (RFC 3339 UTC), the suite's name and sha256,
the decision, the sha256 of the run's attestation and report, and ``prev_sha256``: the
sha256 of the previous line's exact bytes (64 zeros for the first). Editing, removing,
inserting or reordering an entry breaks the chain at that position.

A chain alone cannot show that entries were cut off the end, so every append also
rewrites ``<log>.head``: a DSSE envelope over ``{count, last_sha256}``, signed when the
run has a signing key. ``audit verify --key PUB`` then also detects truncation and a
changed last entry, unless the head itself is rolled back to an older signed copy;
keep copies of the head (or the attestations) elsewhere to rule that out.

Appends hold a file lock (``<log>.lock``) so that concurrent runs never interleave
or fork the chain; each line is written with one ``write`` and fsynced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LlmguardError
from ..report import atomic_write
from . import dsse
from .keys import SigningKey
from .statement import canonical_bytes

DEFAULT_LOG = Path(".llmguard") / "audit.jsonl"
GENESIS = "0" * 64
HEAD_PAYLOAD_TYPE = "application/vnd.llmguard.audit-head+json"
HEAD_TYPE = "https://llmguard.dev/audit-head/v1"


class AuditError(LlmguardError):
    """The log cannot be read or appended to (exit 2)."""


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def head_path(log: Path) -> Path:
    return log.with_name(log.name + ".head")


def lock_path(log: Path) -> Path:
    return log.with_name(log.name + ".lock")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _last_line(path: Path) -> bytes | None:
    """The last complete line of ``path`` (without newline), reading only the file's tail."""
    if not path.exists():
        return None
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = pos = fh.tell()
        if size == 0:
            return None
        data = b""
        while pos > 0 and data.count(b"\n") < 2:
            step = min(1 << 16, pos)
            pos -= step
            fh.seek(pos)
            data = fh.read(step) + data
    if not data.endswith(b"\n"):
        raise AuditError(
            f"{path}: the last entry is incomplete; run 'llmguard audit verify --log {path}'"
        )
    return data[:-1].rsplit(b"\n", 1)[-1]


def append(
    log: Path, record: dict[str, Any], signer: SigningKey | None = None, timeout: float = 120.0
) -> dict[str, Any]:
    """Append ``record`` as the next entry (under the log's file lock); returns the entry."""
    from filelock import FileLock, Timeout  # imported when a run appends, not on every CLI call

    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(lock_path(log)), timeout=timeout):
            last = _last_line(log)
            if last is None:
                seq, prev = 0, GENESIS
            else:
                try:
                    seq = int(json.loads(last)["seq"])
                except (ValueError, KeyError, TypeError):
                    raise AuditError(
                        f"{log}: the last entry is not valid; run "
                        f"'llmguard audit verify --log {log}'"
                    ) from None
                prev = sha256_hex(last)
            entry = {**record, "seq": seq + 1, "prev_sha256": prev}
            line = canonical_bytes(entry)
            with open(log, "ab") as fh:
                fh.write(line + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            _write_head(log, seq + 1, sha256_hex(line), signer)
    except Timeout:
        raise AuditError(
            f"{log}: another run holds the audit-log lock ({lock_path(log)})"
        ) from None
    return entry


def _write_head(log: Path, count: int, last: str, signer: SigningKey | None) -> None:
    body = canonical_bytes(
        {
            "_type": HEAD_TYPE,
            "log": log.name,
            "count": count,
            "last_sha256": last,
            "updated": now_rfc3339(),
        }
    )
    trusted = signer is not None and not signer.development
    envelope = (
        dsse.sign(body, signer.private, signer.keyid, HEAD_PAYLOAD_TYPE)
        if trusted and signer is not None
        else dsse.unsigned(body, HEAD_PAYLOAD_TYPE)
    )
    atomic_write(head_path(log), dsse.serialize(envelope))


@dataclass
class AuditVerdict:
    """The outcome of checking a log: intact, or the first broken position and why."""

    log: Path
    count: int
    intact: bool
    position: int | None = None
    problem: str | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        if self.intact:
            return f"{self.log}: intact, {self.count} {'entry' if self.count == 1 else 'entries'}"
        where = f"entry {self.position}" if self.position is not None else "head"
        return f"{self.log}: broken at {where}: {self.problem}"


def _broken(
    log: Path, count: int, position: int | None, problem: str, notes: list[str]
) -> AuditVerdict:
    return AuditVerdict(
        log=log, count=count, intact=False, position=position, problem=problem, notes=notes
    )


def verify(
    log: Path, public_key: Ed25519PublicKey | None = None, keyid: str | None = None
) -> AuditVerdict:
    """Walk the chain and compare it with the head; name the first broken position (1-based)."""
    log = Path(log)
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        raise AuditError(f"{log}: no audit log here") from None
    except OSError as exc:
        raise AuditError(f"{log}: cannot read: {exc.strerror}") from None
    notes: list[str] = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    elif data:
        return _broken(
            log, len(lines), len(lines), "the entry is incomplete (no final newline)", notes
        )
    prev = GENESIS
    for i, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            return _broken(log, len(lines), i, "not a valid JSON entry", notes)
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            return _broken(log, len(lines), i, "not a log entry (no 'seq')", notes)
        if entry["seq"] != i:
            return _broken(
                log,
                len(lines),
                i,
                f"holds entry #{entry['seq']} where #{i} belongs: entries "
                "were removed, inserted or reordered here",
                notes,
            )
        if entry.get("prev_sha256") != prev:
            if i == 1:
                return _broken(
                    log, len(lines), 1, "the first entry does not start the chain", notes
                )
            return _broken(
                log,
                len(lines),
                i - 1,
                f"entry {i} records a different sha256 for entry {i - 1}: "
                f"entry {i - 1} was changed",
                notes,
            )
        prev = sha256_hex(line)
    return _check_head(log, len(lines), prev, public_key, keyid, notes)


def _check_head(
    log: Path,
    count: int,
    last: str,
    public_key: Ed25519PublicKey | None,
    keyid: str | None,
    notes: list[str],
) -> AuditVerdict:
    path = head_path(log)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if count == 0:
            return AuditVerdict(log=log, count=0, intact=True, notes=notes)
        return _broken(
            log, count, None, f"{path.name} is missing, so truncation cannot be ruled out", notes
        )
    try:
        if public_key is not None:
            payload = dsse.verify(raw, public_key, keyid, HEAD_PAYLOAD_TYPE).payload
        else:
            envelope = dsse.parse_envelope(raw)
            payload = dsse.b64decode_strict(envelope["payload"], "payload")
            notes.append("the head's signature was not checked (pass --key PUB to check it)")
        head = json.loads(payload)
        head_count, head_last = int(head["count"]), str(head["last_sha256"])
    except dsse.VerificationError as exc:
        return _broken(log, count, None, f"{path.name}: {exc}", notes)
    except (ValueError, KeyError, TypeError):
        return _broken(log, count, None, f"{path.name} is not a valid head", notes)
    if head_count > count:
        first = count + 1
        gone = f"entry {first}" if head_count == first else f"entries {first} to {head_count}"
        return _broken(
            log,
            count,
            count + 1,
            f"the log ends after {count} entries but the head records "
            f"{head_count}: {gone} removed (truncated)",
            notes,
        )
    if head_count < count:
        return _broken(
            log,
            count,
            head_count + 1,
            f"entries after #{head_count} are not covered by the "
            "signed head (added by hand, or the head was rolled back)",
            notes,
        )
    if head_last != last:
        return _broken(
            log,
            count,
            count,
            "the last entry does not match the head's sha256: it was changed",
            notes,
        )
    return AuditVerdict(log=log, count=count, intact=True, notes=notes)


def cmd_audit_verify(args: Any) -> int:
    """``llmguard audit verify [--log PATH] [--key PUB]``: 0 intact, 1 broken, 2 error."""
    from .keys import load_public

    public_key, keyid = load_public(Path(args.key)) if args.key else (None, None)
    verdict = verify(Path(args.log), public_key, keyid)
    if args.json:
        print(
            json.dumps(
                {
                    "log": str(verdict.log),
                    "intact": verdict.intact,
                    "entries": verdict.count,
                    "position": verdict.position,
                    "problem": verdict.problem,
                    "notes": verdict.notes,
                },
                indent=2,
            )
        )
    else:
        print(verdict.line())
        for note in verdict.notes:
            print(f"  note: {note}")
    return 0 if verdict.intact else 1
