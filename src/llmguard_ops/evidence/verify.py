"""``llmguard verify``: check an attestation offline with a public key.

Order matters: the envelope's signature is checked over the raw payload bytes first;
only a payload that verified is parsed, checked to be a well-formed in-toto Statement
v1, and, when artifacts are given, compared with its subjects by sha256 (a folder by
the manifest digest of :mod:`llmguard_ops.artifacts`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..artifacts import sha256_path
from ..errors import LlmguardError
from . import dsse
from .dsse import VerificationError
from .keys import load_public
from .statement import PREDICATE_TYPE, parse_statement

EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2


@dataclass
class VerifiedAttestation:
    """A statement whose signature checked, and the artifacts matched to its subjects."""

    statement: dict[str, Any]
    keyid: str
    matches: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def predicate(self) -> dict[str, Any]:
        value = self.statement.get("predicate")
        return value if isinstance(value, dict) else {}


def verify_attestation(
    data: bytes | str, public_key: Ed25519PublicKey, keyid: str, artifacts: Sequence[Path] = ()
) -> VerifiedAttestation:
    """Verify ``data`` (the envelope's bytes); raise :class:`VerificationError` if it fails."""
    verified = dsse.verify(data, public_key, keyid, dsse.INTOTO_PAYLOAD_TYPE)
    statement = parse_statement(verified.payload)
    result = VerifiedAttestation(statement=statement, keyid=keyid)
    ours = statement["predicateType"] == PREDICATE_TYPE
    signer = result.predicate.get("signer") if ours else None
    if isinstance(signer, dict) and signer.get("development_key"):
        result.notes.append(
            "signed with a throw-away development key: integrity only, not who signed"
        )
    by_digest = {
        s["digest"].get("sha256"): f"subject {s.get('name', '?')}" for s in statement["subject"]
    }
    outputs = result.predicate.get("outputs") if ours else None
    if isinstance(outputs, dict):  # our predicate also digests every output file of the run
        for name, digest in outputs.items():
            by_digest.setdefault(digest, f"output {name}")
    for path in artifacts:
        path = Path(path)
        if not path.exists():
            raise LlmguardError(f"{path}: artifact not found")
        digest, _kind = sha256_path(path)
        if digest not in by_digest:
            names = ", ".join(
                f"{s.get('name')} ({s['digest'].get('sha256', '')[:12]}…)"
                for s in statement["subject"]
            )
            raise VerificationError(
                f"{path}: sha256 {digest} matches no subject (subjects: {names}) and no output"
            )
        result.matches[str(path)] = by_digest[digest]
    return result


def cmd_verify(args: argparse.Namespace) -> int:
    """``llmguard verify ATTESTATION --key PUB [--artifact PATH]``: 0 valid, 1 invalid, 2 error."""
    path = Path(args.attestation)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LlmguardError(f"{path}: cannot read the attestation: {exc.strerror}") from None
    public_key, keyid = load_public(Path(args.key))
    try:
        result = verify_attestation(data, public_key, keyid, [Path(a) for a in args.artifact or []])
    except VerificationError as exc:
        if args.json:
            print(
                json.dumps({"valid": False, "attestation": str(path), "reason": str(exc)}, indent=2)
            )
        else:
            print(f"invalid: {path}: {exc}")
        return EXIT_INVALID
    predicate = result.predicate
    decision = (predicate.get("decision") or {}).get("decision")
    suite = predicate.get("suite") or {}
    if args.json:
        print(
            json.dumps(
                {
                    "valid": True,
                    "attestation": str(path),
                    "keyid": keyid,
                    "predicateType": result.statement["predicateType"],
                    "subject": result.statement["subject"],
                    "decision": decision,
                    "suite": {"name": suite.get("name"), "sha256": suite.get("sha256")},
                    "artifacts": result.matches,
                    "notes": result.notes,
                },
                indent=2,
            )
        )
        return EXIT_VALID
    print(f"valid: {path}")
    print(f"  signed by keyid {keyid} (ed25519)")
    print(f"  statement predicateType {result.statement['predicateType']}")
    for s in result.statement["subject"]:
        print(f"  subject {s.get('name')}: sha256 {s['digest'].get('sha256')}")
    if decision:
        print(f"  decision {decision} for suite {suite.get('name')} (sha256 {suite.get('sha256')})")
    for artifact, name in result.matches.items():
        print(f"  artifact {artifact}: matches {name}")
    for note in result.notes:
        print(f"  note: {note}")
    return EXIT_VALID
