"""DSSE v1 envelopes: pre-authentication encoding, signing and strict verification.

The signature covers ``PAE(payloadType, payload)``::

    "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

with lengths as ASCII decimal byte counts, built here as bytes. Verification follows
the spec's order: the signature is checked over the *decoded* payload before anything
parses it. The verifier is deliberately strict, so that no byte of an envelope can be
changed without the change being noticed:

* base64 is accepted only as this producer (and securesystemslib, cosign, in-toto)
  writes it: the standard alphabet with ``=`` padding, canonical (no stray padding
  bits). URL-safe or unpadded spellings are refused, so no two spellings of the same
  bytes can both verify;
* fields the format does not define are refused: what is not signed must not carry
  claims; a JSON key that appears twice in an object is refused (parsers disagree on
  which value wins);
* ``keyid`` is an unauthenticated hint. It only narrows which signatures are tried
  with a key (as the spec allows): a signature whose keyid names another key is not
  tried. It never makes a signature count.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import LlmguardError

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

_ENVELOPE_FIELDS = {"payload", "payloadType", "signatures"}
_SIGNATURE_FIELDS = {"sig", "keyid"}


class VerificationError(LlmguardError):
    """An envelope, statement or log that does not verify (tampered, unsigned or malformed)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload`` under ``payload_type``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def b64decode_strict(text: str, what: str) -> bytes:
    """Decode canonical standard base64 with padding; refuse every other spelling."""
    if not isinstance(text, str) or not text.isascii():
        raise VerificationError(f"{what} is not a base64 string")
    if "-" in text or "_" in text:
        raise VerificationError(f"{what} is URL-safe base64; only the standard alphabet (with padding) is accepted")
    if len(text) % 4:
        raise VerificationError(f"{what} is not canonical base64 (padding missing)")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise VerificationError(f"{what} is not canonical base64")
    return raw


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise VerificationError(f"the JSON object has the key {key!r} twice")
        out[key] = value
    return out


def loads_strict(data: bytes | str, what: str) -> Any:
    """``json.loads`` that refuses duplicate keys, NaN/Infinity and invalid UTF-8."""

    def constant(name: str) -> Any:
        raise VerificationError(f"{what} holds {name}, which JSON does not define")

    try:
        return json.loads(data, object_pairs_hook=no_duplicates, parse_constant=constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{what} is not valid JSON: {exc}") from None


def b64encode(data: bytes) -> str:
    """Standard base64 with padding (what DSSE producers write)."""
    return base64.b64encode(data).decode("ascii")


def sign(
    payload: bytes,
    private_key: Ed25519PrivateKey,
    keyid: str | None,
    payload_type: str = INTOTO_PAYLOAD_TYPE,
) -> dict[str, Any]:
    """A DSSE envelope over ``payload`` with one ed25519 signature."""
    signature: dict[str, Any] = {"sig": b64encode(private_key.sign(pae(payload_type, payload)))}
    if keyid:
        signature["keyid"] = keyid
    return {"payload": b64encode(payload), "payloadType": payload_type, "signatures": [signature]}


def serialize(envelope: dict[str, Any]) -> bytes:
    """The envelope as written to disk: compact JSON, no insignificant byte at all.

    With no whitespace and no trailing newline, *every* single-byte replacement of the
    file breaks the JSON, renames a field, or changes a signed or checked value, so none
    can pass verification (a test walks every position).
    """
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def unsigned(payload: bytes, payload_type: str = INTOTO_PAYLOAD_TYPE) -> dict[str, Any]:
    """An envelope with no signature: carries the payload, never verifies."""
    return {"payload": b64encode(payload), "payloadType": payload_type, "signatures": []}


@dataclass(frozen=True)
class Verified:
    """A payload whose signature checked, with the signature's keyid hint."""

    payload: bytes
    payload_type: str
    keyid: str | None


def parse_envelope(data: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Parse and shape-check an envelope (no cryptography yet)."""
    envelope = data if isinstance(data, dict) else loads_strict(data, "the envelope")
    if not isinstance(envelope, dict):
        raise VerificationError("the envelope is not a JSON object")
    unknown = sorted(set(envelope) - _ENVELOPE_FIELDS)
    if unknown:
        raise VerificationError(f"the envelope has fields DSSE does not define: {', '.join(unknown)}")
    missing = sorted(_ENVELOPE_FIELDS - set(envelope))
    if missing:
        raise VerificationError(f"the envelope lacks {', '.join(missing)}")
    if not isinstance(envelope["payloadType"], str):
        raise VerificationError("payloadType is not a string")
    if not isinstance(envelope["signatures"], list):
        raise VerificationError("signatures is not a list")
    for i, sig in enumerate(envelope["signatures"]):
        if not isinstance(sig, dict) or "sig" not in sig:
            raise VerificationError(f"signatures[{i}] has no 'sig'")
        unknown = sorted(set(sig) - _SIGNATURE_FIELDS)
        if unknown:
            raise VerificationError(f"signatures[{i}] has fields DSSE does not define: {', '.join(unknown)}")
        if "keyid" in sig and not isinstance(sig["keyid"], str):
            raise VerificationError(f"signatures[{i}].keyid is not a string")
    return envelope


def verify(
    data: bytes | str | dict[str, Any],
    public_key: Ed25519PublicKey,
    keyid: str | None,
    payload_type: str | None = INTOTO_PAYLOAD_TYPE,
) -> Verified:
    """Check that some signature of the envelope verifies with ``public_key``.

    Returns the payload bytes, unparsed. Raises :class:`VerificationError` otherwise.
    ``keyid`` is the key's own id: signatures carrying a different keyid are not tried.
    """
    envelope = parse_envelope(data)
    if payload_type is not None and envelope["payloadType"] != payload_type:
        raise VerificationError(f"payloadType is {envelope['payloadType']!r}, expected {payload_type!r}")
    payload = b64decode_strict(envelope["payload"], "payload")
    signatures = envelope["signatures"]
    if not signatures:
        raise VerificationError("unsigned: the envelope carries no signature")
    message = pae(envelope["payloadType"], payload)
    tried = 0
    for i, sig in enumerate(signatures):
        hint = sig.get("keyid")
        raw = b64decode_strict(sig["sig"], f"signatures[{i}].sig")
        if hint is not None and keyid is not None and hint != keyid:
            continue
        tried += 1
        try:
            public_key.verify(raw, message)
        except InvalidSignature:
            continue
        return Verified(payload=payload, payload_type=envelope["payloadType"], keyid=hint)
    if not tried:
        hints = ", ".join(str(s.get("keyid")) for s in signatures)
        raise VerificationError(f"no signature by this key (keyid {keyid}); the envelope names {hints}")
    raise VerificationError("the signature does not match: the envelope was changed or signed by another key")
