"""DSSE: the spec's PAE vector, strict base64, keyid as a hint, verify-before-parse."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from llmguard_ops.evidence import dsse
from llmguard_ops.evidence.dsse import VerificationError
from llmguard_ops.evidence.keys import keyid_of
from llmguard_ops.evidence.statement import parse_statement

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYID = keyid_of(KEY.public_key())


def test_pae_matches_the_spec_vector() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_bytes_not_characters() -> None:
    assert dsse.pae("t/é", "ü".encode()) == b"DSSEv1 4 t/\xc3\xa9 2 \xc3\xbc"


@settings(max_examples=60, deadline=None)
@given(payload_type=st.text(max_size=40), payload=st.binary(max_size=200))
def test_pae_is_unambiguous_and_round_trips(payload_type: str, payload: bytes) -> None:
    encoded = dsse.pae(payload_type, payload)
    head, n_type, rest = encoded.split(b" ", 2)
    assert head == b"DSSEv1"
    kind = rest[: int(n_type)]
    n_body, body = rest[int(n_type) + 1 :].split(b" ", 1)
    assert kind.decode() == payload_type and body == payload and int(n_body) == len(payload)
    envelope = dsse.sign(payload, KEY, KEYID, payload_type)
    assert dsse.verify(envelope, KEY.public_key(), KEYID, payload_type).payload == payload


def test_signature_is_ed25519_over_pae() -> None:
    envelope = dsse.sign(b"{}", KEY, KEYID)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    KEY.public_key().verify(sig, dsse.pae(dsse.INTOTO_PAYLOAD_TYPE, b"{}"))  # raises if not


def test_keyid_is_sha256_of_the_der_public_key() -> None:
    der = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(der).hexdigest() == KEYID


def test_only_the_produced_base64_spelling_verifies() -> None:
    """One payload, one encoding: URL-safe and unpadded spellings of the same bytes fail."""
    payload = bytes(range(250, 256)) * 7 + b"x"  # '+' and '/' in the standard alphabet, padded
    envelope = dsse.sign(payload, KEY, KEYID)
    assert dsse.verify(envelope, KEY.public_key(), KEYID).payload == payload
    assert envelope["payload"].endswith("=")
    url = copy.deepcopy(envelope)
    url["payload"] = base64.urlsafe_b64encode(payload).decode()
    assert "-" in url["payload"] or "_" in url["payload"]
    with pytest.raises(VerificationError, match="URL-safe"):
        dsse.verify(url, KEY.public_key(), KEYID)
    unpadded = dict(envelope, payload=envelope["payload"].rstrip("="))
    with pytest.raises(VerificationError, match="padding"):
        dsse.verify(unpadded, KEY.public_key(), KEYID)
    sig = base64.b64decode(envelope["signatures"][0]["sig"])
    url_sig = copy.deepcopy(envelope)
    url_sig["signatures"][0]["sig"] = base64.urlsafe_b64encode(sig).decode()
    if url_sig["signatures"][0]["sig"] != envelope["signatures"][0]["sig"]:
        with pytest.raises(VerificationError, match="URL-safe"):
            dsse.verify(url_sig, KEY.public_key(), KEYID)
    url_sig["signatures"][0]["sig"] = envelope["signatures"][0]["sig"].rstrip("=")
    with pytest.raises(VerificationError, match="padding"):
        dsse.verify(url_sig, KEY.public_key(), KEYID)


def test_duplicate_json_keys_are_refused_in_envelope_and_payload() -> None:
    envelope = dsse.sign(b'{"a":1}', KEY, KEYID)
    text = dsse.serialize(envelope).decode()
    doubled = text.replace('{"payload":', '{"payloadType":"text/plain","payload":', 1)
    with pytest.raises(VerificationError, match="twice"):
        dsse.verify(doubled, KEY.public_key(), KEYID)
    statement = b'{"_type":"https://in-toto.io/Statement/v1","_type":"x","subject":[]}'
    signed = dsse.verify(dsse.sign(statement, KEY, KEYID), KEY.public_key(), KEYID)
    with pytest.raises(VerificationError, match="twice"):
        parse_statement(signed.payload)
    with pytest.raises(VerificationError, match="NaN"):
        parse_statement(b'{"x": NaN}')


def test_non_canonical_base64_is_refused() -> None:
    envelope = dsse.sign(b"ab", KEY, KEYID)  # 'YWI=': the last char carries 2 unused bits
    assert envelope["payload"] == "YWI="
    same_bytes = dict(envelope, payload="YWJ=")
    assert base64.b64decode("YWJ=") == b"ab"
    with pytest.raises(VerificationError, match="canonical"):
        dsse.verify(same_bytes, KEY.public_key(), KEYID)
    with pytest.raises(VerificationError, match="base64"):
        dsse.b64decode_strict("+_8=", "x")  # standard and URL-safe alphabets mixed


def test_unknown_fields_unsigned_and_wrong_key_are_refused() -> None:
    envelope = dsse.sign(b"{}", KEY, KEYID)
    with pytest.raises(VerificationError, match="does not define"):
        dsse.verify({**envelope, "note": "trust me"}, KEY.public_key(), KEYID)
    extra = copy.deepcopy(envelope)
    extra["signatures"][0]["cert"] = "x"
    with pytest.raises(VerificationError, match="does not define"):
        dsse.verify(extra, KEY.public_key(), KEYID)
    with pytest.raises(VerificationError, match="unsigned"):
        dsse.verify(dsse.unsigned(b"{}"), KEY.public_key(), KEYID)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError, match="no signature by this key"):
        dsse.verify(envelope, other.public_key(), keyid_of(other.public_key()))
    with pytest.raises(VerificationError, match="does not match"):
        dsse.verify(envelope, other.public_key(), None)
    with pytest.raises(VerificationError, match="payloadType"):
        dsse.verify(dsse.sign(b"{}", KEY, KEYID, "text/plain"), KEY.public_key(), KEYID)


def test_keyid_is_only_a_hint() -> None:
    envelope = dsse.sign(b"{}", KEY, None)
    assert "keyid" not in envelope["signatures"][0]
    assert dsse.verify(envelope, KEY.public_key(), KEYID).payload == b"{}"  # tried without a hint
    forged = copy.deepcopy(envelope)
    forged["signatures"][0]["keyid"] = KEYID  # a matching hint does not make a bad signature count
    forged["payload"] = base64.b64encode(b"[]").decode()
    with pytest.raises(VerificationError, match="does not match"):
        dsse.verify(forged, KEY.public_key(), KEYID)


def test_signature_is_checked_before_the_payload_is_parsed() -> None:
    envelope = dsse.sign(b"not json", KEY, KEYID)
    verified = dsse.verify(envelope, KEY.public_key(), KEYID)  # signature fine: no parsing yet
    with pytest.raises(VerificationError, match="not JSON"):
        parse_statement(verified.payload)
    tampered = dict(envelope, payload=base64.b64encode(b"{broken").decode())
    with pytest.raises(VerificationError, match="signature does not match"):
        dsse.verify(tampered, KEY.public_key(), KEYID)


@pytest.mark.parametrize(
    "statement, message",
    [
        (
            {"_type": "https://in-toto.io/Statement/v0.1", "subject": [], "predicateType": "x://y"},
            "_type",
        ),
        (
            {"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "x://y"},
            "non-empty",
        ),
        (
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "m", "digest": {"sha256": "XYZ"}}],
                "predicateType": "x://y",
            },
            "hex",
        ),
        (
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "m", "digest": {"sha256": "ab"}}],
                "predicateType": "x://y",
            },
            "64 hex",
        ),
        (
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "m", "digest": {"sha256": "a" * 64}}],
                "predicateType": "report",
            },
            "URI",
        ),
    ],
)
def test_malformed_statements_are_refused(statement: dict[str, object], message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        parse_statement(json.dumps(statement).encode())
