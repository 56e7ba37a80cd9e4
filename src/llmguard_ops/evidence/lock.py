"""Suite locks: pre-registered gates, signed before results are seen.

``llmguard lock SUITE --key K`` signs the suite's *terms*: every check's ``uses``,
parameters (as written, ``${ENV}`` references unresolved), gates, severity and
``allow_error``, the policy and the seed. ``run --lock FILE`` recomputes the terms of
the suite it is about to run (``--set`` overrides included) and refuses to start when
they differ from the signed ones, naming each change, e.g.
``checks[quality].gate.accuracy.min: 0.85 → 0.8``. Models, datasets and waivers are
not locked: new data and candidates are the point of a run, and waivers are signed
into the report with their approver.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LlmguardError
from ..report import atomic_write
from . import dsse
from .audit import now_rfc3339
from .keys import SigningKey
from .statement import canonical_bytes

if TYPE_CHECKING:
    from ..loading import LoadedSuite

LOCK_PAYLOAD_TYPE = "application/vnd.llmguard.suite-lock+json"
LOCK_TYPE = "https://llmguard.dev/suite-lock/v1"
_ABSENT = object()


class LockError(LlmguardError):
    """A lock that does not verify, or a suite that no longer matches its lock (exit 2)."""


def default_lock_path(suite_path: Path) -> Path:
    """``suite.yaml`` → ``suite.lock.json`` next to it."""
    return suite_path.with_name(suite_path.stem + ".lock.json")


def terms(loaded: LoadedSuite) -> dict[str, Any]:
    """What a lock pins, as plain JSON data."""
    suite = loaded.suite
    return {
        "name": suite.name,
        "seed": suite.seed,
        "policy": suite.policy.model_dump(mode="json"),
        "checks": {
            c.id: {
                "uses": c.uses,
                "severity": c.severity.value,
                "allow_error": c.allow_error,
                "gate": {
                    m: b.model_dump(mode="json", exclude_none=True) for m, b in c.gate.items()
                },
                "with": loaded.raw_params(c.id),
            }
            for c in suite.checks
        },
    }


def digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def create(loaded: LoadedSuite, signer: SigningKey, out: Path) -> tuple[Path, str]:
    """Sign the suite's terms into ``out``; returns (path, digest)."""
    pinned = terms(loaded)
    body: dict[str, Any] = {
        "_type": LOCK_TYPE,
        "suite": loaded.suite.name,
        "file": loaded.path.name,
        "suite_sha256": loaded.sha256,
        "created": now_rfc3339(),
        "digest": digest(pinned),
        "terms": pinned,
    }
    envelope = dsse.sign(canonical_bytes(body), signer.private, signer.keyid, LOCK_PAYLOAD_TYPE)
    atomic_write(out, dsse.serialize(envelope))
    return out, str(body["digest"])


def _flatten(data: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = data


def _flat_terms(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "checks":
            for cid, check in value.items():
                _flatten(check, f"checks[{cid}]", out)
        else:
            _flatten(value, key, out)
    return out


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def changes(locked: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Each difference as ``path: old → new``; a whole check as ``checks[id]: removed/added``."""
    out: list[str] = []
    old_checks, new_checks = locked.get("checks", {}), current.get("checks", {})
    out += [f"checks[{cid}]: removed" for cid in old_checks if cid not in new_checks]
    out += [f"checks[{cid}]: added" for cid in new_checks if cid not in old_checks]
    common = set(old_checks) & set(new_checks)
    old = _flat_terms({**locked, "checks": {k: v for k, v in old_checks.items() if k in common}})
    new = _flat_terms({**current, "checks": {k: v for k, v in new_checks.items() if k in common}})
    for path in sorted(set(old) | set(new)):
        a, b = old.get(path, _ABSENT), new.get(path, _ABSENT)
        if a != b:
            out.append(f"{path}: {_show(a)} → {_show(b)}")
    return out


def check(
    loaded: LoadedSuite, lock_file: Path, public_key: Ed25519PublicKey, keyid: str
) -> dict[str, Any]:
    """Verify ``lock_file`` and compare it with ``loaded``; returns facts for the attestation."""
    try:
        raw = Path(lock_file).read_bytes()
    except OSError as exc:
        raise LockError(f"{lock_file}: cannot read the lock: {exc.strerror}") from None
    try:
        body = json.loads(dsse.verify(raw, public_key, keyid, LOCK_PAYLOAD_TYPE).payload)
        pinned = body["terms"]
    except dsse.VerificationError as exc:
        raise LockError(f"{lock_file}: the lock does not verify: {exc}") from None
    except (ValueError, KeyError, TypeError):
        raise LockError(f"{lock_file}: not a suite lock") from None
    if digest(pinned) != body.get("digest"):
        raise LockError(f"{lock_file}: the lock's digest does not match its terms")
    found = changes(pinned, terms(loaded))
    if found:
        raise LockError(
            f"{loaded.path.name}: the suite changed since it was locked ({lock_file}): "
            + "; ".join(found)
        )
    return {
        "file": str(lock_file),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "digest": body["digest"],
        "keyid": keyid,
        "created": body.get("created"),
    }


def cmd_lock(args: Any) -> int:
    """``llmguard lock SUITE --key K [--out FILE]``: sign the suite's terms."""
    from ..loading import load_suite
    from ..plugins import get_plugin_manager, parse_plugin_options
    from .keys import load_private

    load, block = parse_plugin_options(args.plugin or [])
    host = get_plugin_manager(plugins=load, blocked=block)
    loaded = load_suite(args.suite, host.registry(), overrides=args.set or [])
    signer = load_private(Path(args.key))
    out = Path(args.out) if args.out else default_lock_path(Path(args.suite))
    path, value = create(loaded, signer, out)
    print(f"locked {loaded.suite.name}: {len(loaded.suite.checks)} checks, digest {value}")
    print(
        f"wrote {path} (signed by keyid {signer.keyid}); "
        f"run with: llmguard run {args.suite} --lock {path}"
    )
    return 0
