"""The evidence step of a run: attestation, then the audit-log entry.

Runs after ``report.json`` and every reporter's file are written, so the attestation
can carry the sha256 of each output. An unsigned run still writes
``attestation.dsse.json``, with an empty ``signatures`` list: the file layout stays
the same for CI, the statement is there to read, and no verifier accepts it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..artifacts import sha256_file
from ..report import atomic_write, now_rfc3339
from . import audit, dsse
from .keys import public_pem
from .statement import build_statement, canonical_bytes
from .testresult import TEST_RESULT_NAME, build_test_result

if TYPE_CHECKING:
    from ..loading import LoadedSuite
    from ..report import Report
    from .options import EvidenceOptions

ATTESTATION_NAME = "attestation.dsse.json"
DEV_PUBLIC_NAME = "development-key.pub"


@dataclass
class EvidenceRecord:
    """What the evidence step wrote."""

    attestation: Path
    attestation_sha256: str
    signed: bool
    keyid: str | None
    audit_entry: dict[str, Any] | None = None
    audit_log: Path | None = None
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """The other files it wrote beside the attestation (test result, development public key)."""


def output_digests(
    out_dir: Path, written: list[Path], report: Report, known: Mapping[str, str] | None = None
) -> dict[str, str]:
    """sha256 of every file this run wrote: its outputs and the artifacts its checks list.

    Only files the run names are digested, so stale files left in a reused output folder
    are never attested as this run's. ``known`` (name → sha256, the digests taken as the
    files were written) saves reading those files again.
    """
    files = {Path(p) for p in written}
    for check in report.checks:
        for value in check.artifacts.values():
            path = Path(value)
            # the runner records artifact paths relative to the output folder
            files.add(path if path.is_absolute() else out_dir / path)
    out = {}
    for path in files:
        if not path.is_file() or path.name == ATTESTATION_NAME:
            continue
        try:
            name = path.resolve().relative_to(out_dir.resolve()).as_posix()
        except ValueError:
            name = str(path)
        out[name] = known[name] if known and name in known else sha256_file(path)
    return out


def clear_previous(out_dir: Path) -> list[Path]:
    """Remove the previous run's attestation from ``out_dir`` before this run writes.

    A run killed half way (``kill -9``) must not leave its new ``report.json`` next to
    the previous run's attestation: with the attestation gone first, a partial folder
    has none, and ``llmguard verify`` also checks that the ``report.json`` beside an
    attestation is the one it attests. Returns the files removed.
    """
    removed = []
    for name in (ATTESTATION_NAME, DEV_PUBLIC_NAME, TEST_RESULT_NAME):
        path = Path(out_dir) / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def record(
    report: Report,
    loaded: LoadedSuite,
    out_dir: Path,
    written: list[Path],
    options: EvidenceOptions,
    known: Mapping[str, str] | None = None,
) -> EvidenceRecord:
    """Write the attestation and append the audit-log entry (``known``: see :func:`output_digests`)."""
    signer = options.signer
    extra: list[Path] = []
    if signer is not None and signer.development:
        # the throw-away key's public half, so the run can be checked end to end in development
        extra.append(atomic_write(out_dir / DEV_PUBLIC_NAME, public_pem(signer.public)))
    # the in-toto Test Result, signed alike and digested among the outputs
    result_payload = canonical_bytes(build_test_result(report))
    result_envelope = (
        dsse.sign(result_payload, signer.private, signer.keyid) if signer is not None else dsse.unsigned(result_payload)
    )
    extra.append(atomic_write(out_dir / TEST_RESULT_NAME, dsse.serialize(result_envelope)))
    statement = build_statement(
        report,
        loaded,
        signer=options.signing_info(),
        outputs=output_digests(out_dir, [*written, *extra], report, known),
        lock=options.lock,
    )
    payload = canonical_bytes(statement)
    envelope = dsse.sign(payload, signer.private, signer.keyid) if signer is not None else dsse.unsigned(payload)
    data = dsse.serialize(envelope)
    path = atomic_write(out_dir / ATTESTATION_NAME, data)
    digest = hashlib.sha256(data).hexdigest()
    rec = EvidenceRecord(
        attestation=path,
        attestation_sha256=digest,
        signed=options.trusted,
        keyid=signer.keyid if signer else None,
        files=extra,
    )
    if options.audit_log is not None:
        report_file = out_dir / "report.json"
        entry = {
            "run_id": report.run_id,
            "time": now_rfc3339(),
            "suite": {"name": report.suite.name, "sha256": report.suite.sha256},
            "decision": report.decision.decision.value,
            "attestation_sha256": digest,
            "report_sha256": sha256_file(report_file) if report_file.is_file() else None,
            "out_dir": str(out_dir.resolve()),
            "signed": options.trusted,
            "keyid": signer.keyid if signer and not signer.development else None,
        }
        rec.audit_entry = audit.append(options.audit_log, entry, signer)
        rec.audit_log = options.audit_log
    return rec
