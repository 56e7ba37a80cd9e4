"""Evidence-layer timings: sign/verify against securesystemslib, audit-log append/verify.

Run: ``python benchmarks/evidence.py [--entries 1000]``. Prints one table; the peer
(securesystemslib's DSSE implementation) runs in the same process on the same envelope.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds per call over ``repeat`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def statement(size: int) -> bytes:
    """A Statement with a predicate of about ``size`` bytes (a real run's is 5-60 kB)."""
    from llmguard_ops.evidence.statement import PREDICATE_TYPE, STATEMENT_TYPE, canonical_bytes

    rows = [{"check": f"c{i}", "metric": "accuracy", "value": 0.8 + i * 1e-4} for i in range(size // 60)]
    return canonical_bytes(
        {
            "_type": STATEMENT_TYPE,
            "predicateType": PREDICATE_TYPE,
            "subject": [{"name": "candidate", "digest": {"sha256": "a" * 64}}],
            "predicate": {"rows": rows},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1000, help="audit-log entries to append and verify")
    parser.add_argument("--big-log", type=int, default=10000, help="entries of the log one append is timed on")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import CryptoSigner, SSlibKey

    from llmguard_ops.evidence import audit, dsse
    from llmguard_ops.evidence.keys import SigningKey, keyid_of
    from llmguard_ops.evidence.verify import verify_attestation

    key = Ed25519PrivateKey.generate()
    keyid = keyid_of(key.public_key())
    signer = SigningKey(private=key, keyid=keyid, source="bench")
    ssl_key = SSlibKey.from_crypto(key.public_key(), keyid=keyid)
    ssl_signer = CryptoSigner(key, ssl_key)
    rows: list[tuple[str, str, str]] = []

    for size in (8_000, 64_000):
        payload = statement(size)
        env = dsse.sign(payload, key, keyid)
        blob = json.dumps(env).encode()

        def ours_sign_call(p: bytes = payload) -> None:
            dsse.sign(p, key, keyid)

        ours_sign = timed(ours_sign_call, args.repeat)

        def peer_sign(p: bytes = payload) -> None:
            Envelope(p, dsse.INTOTO_PAYLOAD_TYPE, {}).sign(ssl_signer)

        theirs_sign = timed(peer_sign, args.repeat)

        def ours_verify_call(b: bytes = blob) -> None:
            verify_attestation(b, key.public_key(), keyid)

        ours_verify = timed(ours_verify_call, args.repeat)

        def peer_verify(e: dict[str, object] = env) -> None:
            Envelope.from_dict(copy.deepcopy(e)).verify([ssl_key], 1)

        theirs_verify = timed(peer_verify, args.repeat)
        kb = f"{len(blob) / 1000:.0f} kB envelope"
        rows.append((f"sign ({kb})", f"{ours_sign * 1e6:.0f} µs", f"{theirs_sign * 1e6:.0f} µs"))
        rows.append(
            (
                f"verify + parse statement ({kb})",
                f"{ours_verify * 1e6:.0f} µs",
                f"{theirs_verify * 1e6:.0f} µs (verify only)",
            )
        )

    payload = statement(8_000)
    blob = json.dumps(dsse.sign(payload, key, keyid)).encode()
    t = time.perf_counter()
    buf = bytearray(blob)
    for i in range(len(buf)):
        buf[i] ^= 1
        with contextlib.suppress(dsse.VerificationError):
            verify_attestation(bytes(buf), key.public_key(), keyid)
        buf[i] ^= 1
    rows.append((f"byte-flip walk, {len(blob)} positions", f"{time.perf_counter() - t:.2f} s", "-"))

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "audit.jsonl"
        record = {
            "run_id": "r",
            "decision": "PROMOTE",
            "suite": {"name": "s", "sha256": "b" * 64},
            "attestation_sha256": "c" * 64,
        }
        t = time.perf_counter()
        for _ in range(args.entries):
            audit.append(log, record, signer)
        per_append = (time.perf_counter() - t) / args.entries
        t = time.perf_counter()
        verdict = audit.verify(log, key.public_key(), keyid)
        verify_s = time.perf_counter() - t
        assert verdict.intact
    rows.append(("audit append (lock, fsync, signed head)", f"{per_append * 1e3:.2f} ms", "-"))
    rows.append((f"audit verify, {args.entries} entries", f"{verify_s * 1e3:.1f} ms", "-"))
    rows += append_to_long_log(signer, args.big_log)

    width = max(len(r[0]) for r in rows)
    print("(append rows: the right column is the same append without verify-before-append)")
    print(f"{'operation':<{width}}  {'llmguard-ops':>14}  securesystemslib")
    for name, ours, theirs in rows:
        print(f"{name:<{width}}  {ours:>14}  {theirs}")


def append_to_long_log(signer: object, entries: int) -> list[tuple[str, str, str]]:
    """One append to a log of ``entries`` entries: verified first, and (peer) not verified.

    Every append verifies the whole chain and the signed head before it writes, so an
    append costs O(log size); the peer is the same append with that check skipped (what
    append did before), in the same process on the same log.
    """
    from unittest import mock

    from llmguard_ops.evidence import audit
    from llmguard_ops.evidence.statement import canonical_bytes

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "audit.jsonl"
        prev, lines = audit.GENESIS, []
        for i in range(1, entries + 1):
            row = {
                "run_id": f"r{i}",
                "decision": "PROMOTE",
                "attestation_sha256": "a" * 64,
                "report_sha256": "b" * 64,
                "suite": {"name": "s", "sha256": "c" * 64},
                "time": "2026-12-02T00:00:00.000Z",
                "seq": i,
                "prev_sha256": prev,
            }
            line = canonical_bytes(row)
            lines.append(line)
            prev = audit.sha256_hex(line)
        log.write_bytes(b"".join(line + b"\n" for line in lines))
        audit._write_head(log, entries, prev, signer)  # type: ignore[arg-type]
        record = {"run_id": "next", "decision": "PROMOTE"}
        ours = timed(lambda: audit.append(log, record, signer), 5)  # type: ignore[arg-type]
        with mock.patch.object(audit, "check_appendable", lambda *a: None):
            peer = timed(lambda: audit.append(log, record, signer), 5)  # type: ignore[arg-type]
    return [(f"audit append to a {entries}-entry log", f"{ours * 1e3:.1f} ms", f"{peer * 1e3:.1f} ms")]


if __name__ == "__main__":
    main()
