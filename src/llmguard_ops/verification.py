"""Checking a run's evidence from a plugin: the signature, the attested report, approvals.

The same steps ``llmguard verify`` takes, behind two calls with a stable shape, so a
plugin acting on a decision (a registry moving an alias, a deploy step) accepts exactly
what the command line accepts. Every failure to verify is a
:class:`~llmguard_ops.LlmguardError` or a problem listed in the result, never a pass.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LlmguardError


@dataclass(frozen=True)
class VerifiedStatement:
    """An attestation whose ed25519 signature verified: the in-toto statement inside it.

    ``sha256`` is the digest of the envelope bytes that were verified (tag a registry
    entry with it); ``notes`` say what the signature does not vouch for (a development
    key proves integrity only).
    """

    path: Path
    statement: dict[str, Any]
    keyid: str
    sha256: str
    notes: tuple[str, ...] = ()

    @property
    def predicate(self) -> dict[str, Any]:
        """The statement's predicate: for a run's attestation, its report."""
        value = self.statement.get("predicate")
        return value if isinstance(value, dict) else {}

    @property
    def decision(self) -> str | None:
        """The signed decision (``PROMOTE``, ``REVIEW``, ``BLOCK``), when the predicate has one."""
        value = (self.predicate.get("decision") or {}).get("decision")
        return value if isinstance(value, str) else None

    @property
    def run_id(self) -> str | None:
        value = self.predicate.get("run_id")
        return value if isinstance(value, str) else None

    def subject_sha256(self, name: str) -> str | None:
        """The sha256 of the subject ``name`` (``candidate``, ``baseline``, …), or None."""
        for subject in self.statement.get("subject") or []:
            if isinstance(subject, dict) and subject.get("name") == name:
                value = (subject.get("digest") or {}).get("sha256")
                return value if isinstance(value, str) else None
        return None


@dataclass(frozen=True)
class ApprovalCheck:
    """A verified attestation of a REVIEW and what its approvals amount to.

    ``problems`` is empty only when the report beside the attestation is the attested
    one, the run's key is in the trust file (and valid when the run finished), and the
    signed approvals in the folder satisfy the run's ``policy.approvals``.
    """

    attestation: VerifiedStatement
    problems: tuple[str, ...]
    approvers: tuple[tuple[str, str], ...]
    """``(name, role)`` of every approval that counts."""

    @property
    def approved(self) -> bool:
        return not self.problems


def verify_attestation_file(attestation: str | Path, public_key: str | Path) -> VerifiedStatement:
    """Verify ``attestation`` (a DSSE envelope, e.g. a run's ``attestation.dsse.json``) with
    an ed25519 public key (PEM file): the signature over the exact bytes, then the statement.

    Raises :class:`~llmguard_ops.LlmguardError` when the file or key cannot be read, the
    signature does not verify, or the payload is no in-toto Statement v1.
    """
    from .evidence.keys import load_public
    from .evidence.verify import verify_attestation

    path = Path(attestation)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LlmguardError(f"{path}: cannot read the attestation: {exc.strerror or exc}") from None
    key, keyid = load_public(Path(public_key))
    verified = verify_attestation(data, key, keyid)
    return VerifiedStatement(
        path=path,
        statement=verified.statement,
        keyid=keyid,
        sha256=hashlib.sha256(data).hexdigest(),
        notes=tuple(verified.notes),
    )


def check_approvals(
    attestation: str | Path,
    public_key: str | Path,
    approvals: str | Path,
    trust: str | Path,
    *,
    report: str | Path | None = None,
) -> ApprovalCheck:
    """What ``llmguard verify --approvals DIR --trust FILE`` requires of a REVIEW's evidence.

    Verifies the attestation (:func:`verify_attestation_file`), then lists as problems: a
    ``report`` (default: the ``report.json`` beside the attestation) that is not the
    attested one, a run key missing from the ``trust`` file or outside its validity, and
    approvals in the ``approvals`` folder that do not satisfy the run's
    ``policy.approvals``. Whether the signed decision is the REVIEW the caller means is
    the caller's to check (``result.attestation.decision`` and ``run_id``). Raises
    :class:`~llmguard_ops.LlmguardError` for what cannot be read or does not verify.
    """
    from .evidence.approvals import check_run_signer, evaluate, load_trust
    from .evidence.verify import Binding, check_report

    verified = verify_attestation_file(attestation, public_key)
    trusted = load_trust(Path(trust))
    binding = Binding()
    check_report(verified.statement, verified.path, Path(report) if report is not None else None, binding)
    problems = list(binding.problems)
    signer = check_run_signer(trusted, verified.keyid, verified.statement)
    if signer is not None:
        problems.append(signer)
    verdict = evaluate(Path(approvals), verified.sha256, verified.statement, verified.keyid, trusted)
    problems += verdict.problems
    approvers = tuple((line.name or "", line.role or "") for line in verdict.lines if line.counted)
    return ApprovalCheck(attestation=verified, problems=tuple(problems), approvers=approvers)
