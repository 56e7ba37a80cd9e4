"""The append-only audit log: one JSON line per run, hash-chained, with a signed head.

Each entry records the run id, the time (RFC 3339 UTC), the suite's name and sha256,
the decision, the sha256 of the run's attestation and report, and ``prev_sha256``: the
sha256 of the previous line's exact bytes (64 zeros for the first). Editing, removing,
inserting or reordering an entry breaks the chain at that position.

A chain alone cannot show that entries were cut off the end, so every append also
rewrites ``<log>.head``: a DSSE envelope over ``{count, last_sha256}``, signed when the
run has a signing key. ``audit verify --key PUB`` then also detects truncation and a
changed last entry. A head rolled back to an older signed copy (with the log cut to
match) is caught against a head published earlier: ``audit head --out FILE`` exports
it, ``audit verify --head FILE`` checks that the log still extends it.

Every append first verifies the whole log (:func:`check_appendable`) and refuses to
extend a broken one, so that a run never re-signs an edited log: a signed run needs the
head signed by its own key, and a run without a trusted key cannot replace a signed head
by an unsigned one. A broken log is closed with :func:`seal` (``llmguard audit seal``):
it is renamed aside and a new log starts with an entry that records the old log's and
head's sha256.

Appends hold a file lock (``<log>.lock``, ``fcntl.flock`` through filelock) so that
concurrent runs never interleave or fork the chain; each line is written with one
``write`` and fsynced. The check a run makes before its first check runs
(:func:`check_appendable_now`) holds the same lock: read between another run's line
and its new head, the log would look broken.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LlmguardError
from ..report import atomic_write, now_rfc3339
from . import dsse
from .keys import SigningKey
from .statement import canonical_bytes

DEFAULT_LOG = Path(".llmguard") / "audit.jsonl"
GENESIS = "0" * 64
HEAD_PAYLOAD_TYPE = "application/vnd.llmguard.audit-head+json"
HEAD_TYPE = "https://llmguard.dev/audit-head/v1"


class AuditError(LlmguardError):
    """The log cannot be read or appended to (exit 2)."""


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
        raise AuditError(f"{path}: the last entry is incomplete; run 'llmguard audit verify --log {path}'")
    return data[:-1].rsplit(b"\n", 1)[-1]


@contextlib.contextmanager
def locked(log: Path, timeout: float = 120.0) -> Iterator[None]:
    """Hold the log's file lock (exclusive; other runs wait up to ``timeout`` seconds)."""
    from filelock import FileLock, Timeout  # imported when a run appends, not on every CLI call

    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        lock = FileLock(str(lock_path(log)), timeout=timeout)
        lock.acquire()
    except Timeout:
        raise AuditError(f"{log}: another run holds the audit-log lock ({lock_path(log)})") from None
    try:
        yield
    finally:
        lock.release()


def check_appendable_now(log: Path, signer: SigningKey | None, timeout: float = 120.0) -> None:
    """:func:`check_appendable` under the log's lock, so a concurrent append is never half seen."""
    with locked(log, timeout):
        check_appendable(log, signer)


def append(
    log: Path, record: dict[str, Any], signer: SigningKey | None = None, timeout: float = 120.0
) -> dict[str, Any]:
    """Append ``record`` as the next entry (under the log's file lock); returns the entry."""
    log = Path(log)
    with locked(log, timeout):
        check_appendable(log, signer)
        last = _last_line(log)
        if last is None:
            seq, prev = 0, GENESIS
        else:
            try:
                seq = int(json.loads(last)["seq"])
            except (ValueError, KeyError, TypeError):
                raise AuditError(
                    f"{log}: the last entry is not valid; run 'llmguard audit verify --log {log}'"
                ) from None
            prev = sha256_hex(last)
        entry = {**record, "seq": seq + 1, "prev_sha256": prev}
        line = canonical_bytes(entry)
        with open(log, "ab") as fh:
            fh.write(line + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        _write_head(log, seq + 1, sha256_hex(line), signer)
    return entry


def _refuse(log: Path, why: str) -> AuditError:
    return AuditError(
        f"{log}: refusing to append to this audit log: {why}. If the log was tampered "
        f"with, keep it as evidence and seal it: 'llmguard audit seal --log {log} --key KEY' "
        "moves it aside and starts a new log whose first entry records the old one's sha256"
    )


def check_appendable(log: Path, signer: SigningKey | None) -> None:
    """Raise :class:`AuditError` unless a run signed by ``signer`` may extend ``log``.

    The whole chain and the head are verified first. A trusted (non-development) signer
    needs the head to verify with its own key: otherwise an attacker who edited the log
    and wrote an unsigned head would get the edit re-signed by the next run. A run
    without a trusted key cannot check a signature, so it refuses a signed head rather
    than replace it with an unsigned one.
    """
    log = Path(log)
    head = head_path(log)
    if not log.exists() or log.stat().st_size == 0:
        if head.exists():  # entries were there once: the log was deleted or emptied
            raise _refuse(log, f"the log is missing or empty but {head.name} exists")
        return
    trusted = signer is not None and not signer.development
    if trusted and signer is not None:
        verdict = verify(log, signer.public, signer.keyid)
        if not verdict.intact:
            raise _refuse(log, verdict.line())
        return
    verdict = verify(log, None, None)
    if not verdict.intact:
        raise _refuse(log, verdict.line())
    try:
        signatures = dsse.parse_envelope(head.read_bytes())["signatures"]
    except (OSError, dsse.VerificationError):
        raise _refuse(log, f"{head.name} cannot be read") from None
    if signatures:
        raise AuditError(
            f"{log}: its head is signed, and a run without a trusted key cannot extend it "
            "(an unsigned head would hide truncation): sign the run with --key, or use "
            "another --audit-log (or --no-audit-log)"
        )


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


def _broken(log: Path, count: int, position: int | None, problem: str, notes: list[str]) -> AuditVerdict:
    return AuditVerdict(log=log, count=count, intact=False, position=position, problem=problem, notes=notes)


def _strict(data: bytes) -> Any:
    return json.loads(data, object_pairs_hook=dsse.no_duplicates)


def verify(
    log: Path,
    public_key: Ed25519PublicKey | None = None,
    keyid: str | None = None,
    published: bytes | None = None,
) -> AuditVerdict:
    """Walk the chain and compare it with the head; name the first broken position (1-based).

    ``published`` is a head exported earlier (``audit head --out``): the log must still
    extend it, which catches a truncation hidden by restoring an older head.
    """
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
        return _broken(log, len(lines), len(lines), "the entry is incomplete (no final newline)", notes)
    prev = GENESIS
    hashes: list[str] = []
    for i, line in enumerate(lines, 1):
        try:
            entry = _strict(line)
        except (ValueError, UnicodeDecodeError, dsse.VerificationError):
            return _broken(log, len(lines), i, "not a valid JSON entry", notes)
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            return _broken(log, len(lines), i, "not a log entry (no 'seq')", notes)
        if entry["seq"] != i:
            return _broken(
                log,
                len(lines),
                i,
                f"holds entry #{entry['seq']} where #{i} belongs: entries were removed, inserted or reordered here",
                notes,
            )
        if entry.get("prev_sha256") != prev:
            if i == 1:
                return _broken(log, len(lines), 1, "the first entry does not start the chain", notes)
            return _broken(
                log,
                len(lines),
                i - 1,
                f"entry {i} records a different sha256 for entry {i - 1}: entry {i - 1} was changed",
                notes,
            )
        prev = sha256_hex(line)
        hashes.append(prev)
    verdict = _check_head(log, len(lines), prev, public_key, keyid, notes)
    if verdict.intact and published is not None:
        return _check_published(log, hashes, published, public_key, keyid, notes)
    return verdict


def _read_head(
    raw: bytes, public_key: Ed25519PublicKey | None, keyid: str | None, notes: list[str], what: str
) -> tuple[int, str]:
    """``(count, last_sha256)`` of a head envelope; raises VerificationError or ValueError."""
    if public_key is not None:
        payload = dsse.verify(raw, public_key, keyid, HEAD_PAYLOAD_TYPE).payload
    else:
        envelope = dsse.parse_envelope(raw)
        payload = dsse.b64decode_strict(envelope["payload"], "payload")
        notes.append(f"the signature of {what} was not checked (pass --key PUB to check it)")
    head = _strict(payload)
    count, last = head["count"], head["last_sha256"]
    if not isinstance(count, int) or count < 1 or not isinstance(last, str):
        raise ValueError("not a head")
    return count, last


def _check_published(
    log: Path,
    hashes: list[str],
    raw: bytes,
    public_key: Ed25519PublicKey | None,
    keyid: str | None,
    notes: list[str],
) -> AuditVerdict:
    count = len(hashes)
    try:
        old_count, old_last = _read_head(raw, public_key, keyid, notes, "the published head")
    except dsse.VerificationError as exc:
        return _broken(log, count, None, f"the published head does not verify: {exc}", notes)
    except (ValueError, KeyError, TypeError):
        return _broken(log, count, None, "the published head is not a valid head", notes)
    if old_count > count:
        return _broken(
            log,
            count,
            count + 1,
            f"the log holds {count} entries but a published head recorded {old_count}: "
            "entries were removed and the head rolled back",
            notes,
        )
    if hashes[old_count - 1] != old_last:
        return _broken(
            log,
            count,
            old_count,
            f"entry {old_count} is not the one the published head recorded: "
            "the log was rewritten since it was published",
            notes,
        )
    notes.append(f"extends the published head ({old_count} entries)")
    return AuditVerdict(log=log, count=count, intact=True, notes=notes)


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
        return _broken(log, count, None, f"{path.name} is missing, so truncation cannot be ruled out", notes)
    try:
        head_count, head_last = _read_head(raw, public_key, keyid, notes, "the head")
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
            f"the log ends after {count} entries but the head records {head_count}: {gone} removed (truncated)",
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


def sealed_path(log: Path, stamp: str) -> Path:
    """``audit.jsonl`` → ``audit.sealed-20260101T000000Z.jsonl``."""
    return log.with_name(f"{log.stem}.sealed-{stamp}{log.suffix}")


def seal(
    log: Path, signer: SigningKey | None = None, reason: str = "", timeout: float = 120.0
) -> tuple[Path, dict[str, Any]]:
    """Move ``log`` (intact or not) and its head aside; start a new log linking them.

    The new log's first entry records the sealed log's name, the sha256 of its bytes
    and of its head's bytes, its entry count, and whether it verified (and if not, why),
    so the old log stays evidence and the new chain starts from a stated point.
    Returns (the sealed log's new path, the new first entry).
    """
    from filelock import FileLock, Timeout

    log = Path(log)
    if not log.exists() and not head_path(log).exists():
        raise AuditError(f"{log}: no audit log here to seal")
    try:
        with FileLock(str(lock_path(log)), timeout=timeout):
            trusted = signer is not None and not signer.development
            if log.exists():
                verdict = verify(
                    log,
                    signer.public if trusted and signer else None,
                    signer.keyid if trusted and signer else None,
                )
            else:  # only the head is left: the log itself was deleted
                verdict = _broken(log, 0, None, "the log is missing but its head exists", [])
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            target = sealed_path(log, stamp)
            head = head_path(log)
            head_bytes = head.read_bytes() if head.exists() else None
            log_bytes = log.read_bytes() if log.exists() else b""
            if log.exists():
                os.replace(log, target)
            else:
                atomic_write(target, b"")
            if head.exists():
                os.replace(head, head_path(target))
            entry = {
                "kind": "seal",
                "time": now_rfc3339(),
                "sealed_log": target.name,
                "sealed_sha256": sha256_hex(log_bytes),
                "sealed_head_sha256": sha256_hex(head_bytes) if head_bytes is not None else None,
                "sealed_entries": verdict.count,
                "sealed_intact": verdict.intact,
                "sealed_problem": verdict.problem,
                "reason": reason,
                "keyid": signer.keyid if trusted and signer else None,
                "seq": 1,
                "prev_sha256": GENESIS,
            }
            line = canonical_bytes(entry)
            with open(log, "xb") as fh:
                fh.write(line + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            _write_head(log, 1, sha256_hex(line), signer)
    except Timeout:
        raise AuditError(f"{log}: another run holds the audit-log lock ({lock_path(log)})") from None
    return target, entry


def cmd_audit_seal(args: Any) -> int:
    """``llmguard audit seal [--log PATH] [--key KEY] [--reason TEXT]``."""
    from .keys import load_private

    signer = load_private(Path(args.key)) if args.key else None
    target, entry = seal(Path(args.log), signer, reason=args.reason or "")
    state = "intact" if entry["sealed_intact"] else f"broken: {entry['sealed_problem']}"
    print(f"sealed {args.log} as {target} ({entry['sealed_entries']} entries, {state})")
    print(
        f"new log {args.log}: entry 1 records sealed sha256 {entry['sealed_sha256']}"
        + ("" if signer else " (head unsigned: pass --key to sign it)")
    )
    return 0


def cmd_audit_head(args: Any) -> int:
    """``llmguard audit head [--log PATH] [--key PUB] [--out FILE]``: export the head."""
    from .keys import load_public

    public_key, keyid = load_public(Path(args.key)) if args.key else (None, None)
    log = Path(args.log)
    verdict = verify(log, public_key, keyid)
    if not verdict.intact:
        print(verdict.line())
        return 1
    raw = head_path(log).read_bytes()
    if args.out:
        atomic_write(Path(args.out), raw)
        print(
            f"wrote {args.out}: the head of {log} ({verdict.count} entries); publish it "
            f"where the log's holder cannot change it, then: llmguard audit verify --log {log} "
            f"--head {args.out} --key PUB"
        )
    else:
        print(raw.decode("ascii"))
    return 0


def cmd_audit_verify(args: Any) -> int:
    """``llmguard audit verify [--log PATH] [--key PUB] [--head FILE]``: 0 intact, 1 broken."""
    from .keys import load_public

    public_key, keyid = load_public(Path(args.key)) if args.key else (None, None)
    published = None
    if getattr(args, "head", None):
        try:
            published = Path(args.head).read_bytes()
        except OSError as exc:
            raise AuditError(f"{args.head}: cannot read the published head: {exc.strerror}") from None
    verdict = verify(Path(args.log), public_key, keyid, published)
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
