"""Verify the run's ``attestation.dsse.json`` before any promotion.

When the host exports its verifier (``llmguard_ops.verify_attestation_file``) it is used,
so the plugin accepts exactly what ``llmguard verify`` accepts. Otherwise a compact DSSE
v1 verifier over ed25519 is used (signature over ``PAE(payloadType, payload)`` checked
before the payload is parsed, as the DSSE spec orders). Either way the plugin then binds
the statement to *this* run and *this* model: the run id, the PROMOTE decision and the
candidate's sha256 must all appear in the signed statement.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ATTESTATION = "attestation.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


class AttestationError(Exception):
    """The attestation is missing, unsigned, tampered or about another run or model."""


@dataclass(frozen=True)
class Verified:
    """A statement whose signature checked, and the key id that signed it."""

    statement: dict[str, Any]
    keyid: str
    sha256: str


def load_public_key(path: Path) -> tuple[Any, str]:
    """An ed25519 public key (PEM) and its key id (sha256 of the DER public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise AttestationError(f"{path}: cannot read the public key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AttestationError(f"{path}: not an ed25519 public key")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, hashlib.sha256(der).hexdigest()


def _pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise AttestationError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError(f"{what} is not valid base64") from None


def verify_dsse(data: bytes, public_key: Any, keyid: str) -> dict[str, Any]:
    """Fallback verifier: the in-toto statement of a DSSE envelope signed by ``public_key``."""
    from cryptography.exceptions import InvalidSignature

    try:
        envelope = json.loads(data)
    except ValueError as exc:
        raise AttestationError(f"the envelope is not JSON: {exc}") from None
    if not isinstance(envelope, dict) or set(envelope) != {"payload", "payloadType", "signatures"}:
        raise AttestationError("not a DSSE envelope (payload, payloadType, signatures)")
    if envelope["payloadType"] != PAYLOAD_TYPE:
        raise AttestationError(f"payloadType is {envelope['payloadType']!r}, expected {PAYLOAD_TYPE!r}")
    payload = _b64(envelope["payload"], "payload")
    message = _pae(PAYLOAD_TYPE, payload)
    signatures = envelope["signatures"] if isinstance(envelope["signatures"], list) else []
    if not signatures:
        raise AttestationError("unsigned: the envelope carries no signature")
    for i, sig in enumerate(signatures):
        if not isinstance(sig, dict) or sig.get("keyid", keyid) != keyid:
            continue  # keyid is only a hint: it narrows what is tried, never makes a signature count
        try:
            public_key.verify(_b64(sig.get("sig"), f"signatures[{i}].sig"), message)
        except InvalidSignature:
            continue
        statement = json.loads(payload)
        if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
            raise AttestationError("the payload is not an in-toto Statement v1")
        return statement
    raise AttestationError("no signature of the envelope verifies with the configured public key")


def _verify_statement(path: Path, data: bytes, public_key_path: Path) -> tuple[dict[str, Any], str, str]:
    """The verified statement, the key id and the sha256 of the envelope bytes verified."""
    try:  # the host's own verifier, when the host exports it
        from llmguard_ops import LlmguardError, verify_attestation_file
    except ImportError:
        key, keyid = load_public_key(public_key_path)
        return verify_dsse(data, key, keyid), keyid, hashlib.sha256(data).hexdigest()
    try:
        verified = verify_attestation_file(path, public_key_path)
    except LlmguardError as exc:
        raise AttestationError(str(exc)) from None
    return verified.statement, verified.keyid, verified.sha256


def verify_run(out_dir: Path, public_key_path: Path, run_id: str, subject: str, sha256: str) -> Verified:
    """Verify ``out_dir/attestation.dsse.json`` and bind it to this run and model.

    Raises :class:`AttestationError` unless the signature verifies with the public key,
    the signed predicate is this run's (``run_id``) PROMOTE decision, and a subject named
    ``subject`` carries ``sha256``.
    """
    path = Path(out_dir) / ATTESTATION
    try:
        data = path.read_bytes()
    except OSError:
        raise AttestationError(f"{path}: no attestation (run with a signing key)") from None
    statement, keyid, digest = _verify_statement(path, data, public_key_path)
    found = statement.get("predicate")
    predicate: dict[str, Any] = found if isinstance(found, dict) else {}
    if predicate.get("run_id") != run_id:
        raise AttestationError(f"the attestation is of run {predicate.get('run_id')!r}, not of run {run_id!r}")
    decision = (predicate.get("decision") or {}).get("decision")
    if decision != "PROMOTE":
        raise AttestationError(f"the signed decision is {decision!r}, not PROMOTE")
    digests = {
        s.get("name"): (s.get("digest") or {}).get("sha256")
        for s in statement.get("subject") or []
        if isinstance(s, dict)
    }
    if digests.get(subject) != sha256:
        raise AttestationError(f"no signed subject '{subject}' with sha256 {sha256[:12]}…")
    return Verified(statement=statement, keyid=keyid, sha256=digest)
