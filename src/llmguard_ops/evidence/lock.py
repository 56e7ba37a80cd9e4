"""Suite locks: pre-registered gates, signed before results are seen.

``llmguard lock SUITE --key K`` signs the suite's *terms*: every check's ``uses``,
parameters (as written, ``${ENV}`` references unresolved), gates, severity and
``allow_error``, the policy and the seed. ``run --lock FILE`` recomputes the terms of
the suite it is about to run (``--set`` overrides included) and refuses to start when
they differ from the signed ones, naming each change, e.g.
``checks[quality].gate.accuracy.min: 0.85 → 0.8``.

Datasets are locked as the lock's author chooses (``--datasets``): ``rows`` (the
default) pins a minimum row count per dataset, the size the gates were set for, so a
``--set datasets.current.path=five_rows.csv`` is refused while new data of the same
size runs; ``digest`` pins each file's sha256 (a fixed evaluation set); ``none`` pins
neither. A dataset added or removed is always a change. Models are not locked (a new
candidate is the point of a run), nor waivers (they are signed into the report with
their approver).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import LlmguardError
from ..report import atomic_write, now_rfc3339
from . import dsse
from .keys import SigningKey
from .statement import canonical_bytes

if TYPE_CHECKING:
    from ..loading import LoadedSuite
    from ..registry import Registry

LOCK_PAYLOAD_TYPE = "application/vnd.llmguard.suite-lock+json"
LOCK_TYPE = "https://llmguard.dev/suite-lock/v1"
DATASET_MODES = ("rows", "digest", "none")
_ABSENT = object()


class LockError(LlmguardError):
    """A lock that does not verify, or a suite that no longer matches its lock (exit 2)."""


def default_lock_path(suite_path: Path) -> Path:
    """``suite.yaml`` → ``suite.lock.json`` next to it."""
    return suite_path.with_name(suite_path.stem + ".lock.json")


#: policy keys added after locks were first written: left out at their default, so a
#: lock made before they existed still matches a suite that does not use them
_NEWER_POLICY_DEFAULTS: dict[str, Any] = {"approvals": None, "require_model_signature": False}


def _policy_terms(policy: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in policy.items() if k not in _NEWER_POLICY_DEFAULTS or v != _NEWER_POLICY_DEFAULTS[k]}


def terms(loaded: LoadedSuite) -> dict[str, Any]:
    """What a lock pins, as plain JSON data."""
    suite = loaded.suite
    return {
        "name": suite.name,
        "seed": suite.seed,
        "policy": _policy_terms(suite.policy.model_dump(mode="json")),
        "checks": {
            c.id: {
                "uses": c.uses,
                "severity": c.severity.value,
                "allow_error": c.allow_error,
                "gate": {m: b.model_dump(mode="json", exclude_none=True) for m, b in c.gate.items()},
                "with": loaded.raw_params(c.id),
            }
            for c in suite.checks
        },
    }


def digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(data)).hexdigest()


def dataset_facts(loaded: LoadedSuite, registry: Registry | None) -> dict[str, dict[str, Any]]:
    """``{name: {path, sha256, rows}}`` of the suite's datasets (read with ``registry``)."""
    from ..artifacts import load_datasets

    if registry is None:
        from ..plugins import get_plugin_manager

        registry = get_plugin_manager().registry()
    return {
        name: {"path": str(d.path), "sha256": d.sha256, "rows": d.rows}
        for name, d in load_datasets(loaded, registry).items()
    }


def dataset_pins(facts: dict[str, dict[str, Any]], mode: str) -> dict[str, Any]:
    """What the lock signs about datasets in ``mode``."""
    if mode not in DATASET_MODES:
        raise LockError(f"--datasets must be one of {', '.join(DATASET_MODES)}, not {mode!r}")
    if mode == "none":
        return {"mode": mode, "names": sorted(facts)}
    key = "min_rows" if mode == "rows" else "sha256"
    value = "rows" if mode == "rows" else "sha256"
    return {"mode": mode, "pins": {n: {key: f[value]} for n, f in sorted(facts.items())}}


def dataset_changes(pinned: dict[str, Any], facts: dict[str, dict[str, Any]]) -> list[str]:
    """Each way the run's datasets differ from the lock, naming the dataset."""
    mode = pinned.get("mode")
    names = set(pinned.get("names") or pinned.get("pins") or {})
    out = [f"datasets.{n}: removed" for n in sorted(names - set(facts))]
    out += [f"datasets.{n}: added" for n in sorted(set(facts) - names)]
    for name, pin in sorted((pinned.get("pins") or {}).items()):
        fact = facts.get(name)
        if fact is None:
            continue
        if mode == "rows" and fact["rows"] < pin["min_rows"]:
            out.append(
                f"datasets.{name}: {fact['rows']} rows ({fact['path']}), the lock requires at least {pin['min_rows']}"
            )
        if mode == "digest" and fact["sha256"] != pin["sha256"]:
            out.append(f"datasets.{name}.sha256: {pin['sha256'][:16]}… → {fact['sha256'][:16]}… ({fact['path']})")
    return out


def create(
    loaded: LoadedSuite,
    signer: SigningKey,
    out: Path,
    datasets: str = "rows",
    registry: Registry | None = None,
) -> tuple[Path, str]:
    """Sign the suite's terms (and its datasets, by ``datasets`` mode) into ``out``."""
    pinned = terms(loaded)
    data = dataset_pins(
        dataset_facts(loaded, registry) if datasets != "none" else {n: {} for n in loaded.suite.datasets},
        datasets,
    )
    body: dict[str, Any] = {
        "_type": LOCK_TYPE,
        "suite": loaded.suite.name,
        "file": loaded.path.name,
        "suite_sha256": loaded.sha256,
        "created": now_rfc3339(),
        "digest": digest(pinned),
        "terms": pinned,
        "datasets": data,
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
    loaded: LoadedSuite,
    lock_file: Path,
    public_key: Ed25519PublicKey,
    keyid: str,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Verify ``lock_file`` and compare it with ``loaded``; returns facts for the attestation."""
    try:
        raw = Path(lock_file).read_bytes()
    except OSError as exc:
        raise LockError(f"{lock_file}: cannot read the lock: {exc.strerror}") from None
    try:
        payload = dsse.verify(raw, public_key, keyid, LOCK_PAYLOAD_TYPE).payload
        body = json.loads(payload, object_pairs_hook=dsse.no_duplicates)
        pinned = body["terms"]
    except dsse.VerificationError as exc:
        raise LockError(f"{lock_file}: the lock does not verify: {exc}") from None
    except (ValueError, KeyError, TypeError):
        raise LockError(f"{lock_file}: not a suite lock") from None
    if digest(pinned) != body.get("digest"):
        raise LockError(f"{lock_file}: the lock's digest does not match its terms")
    found = changes(pinned, terms(loaded))
    data = body.get("datasets")
    if isinstance(data, dict) and data.get("mode") in DATASET_MODES:
        facts = dataset_facts(loaded, registry) if data["mode"] != "none" else {n: {} for n in loaded.suite.datasets}
        found += dataset_changes(data, facts)
    if found:
        raise LockError(f"{loaded.path.name}: the suite changed since it was locked ({lock_file}): " + "; ".join(found))
    return {
        "file": str(lock_file),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "digest": body["digest"],
        "keyid": keyid,
        "created": body.get("created"),
        "datasets": data.get("mode") if isinstance(data, dict) else None,
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
    mode = getattr(args, "datasets", None) or "rows"
    path, value = create(loaded, signer, out, datasets=mode, registry=host.registry())
    print(
        f"locked {loaded.suite.name}: {len(loaded.suite.checks)} checks, "
        f"{len(loaded.suite.datasets)} datasets by {mode}, digest {value}"
    )
    print(f"wrote {path} (signed by keyid {signer.keyid}); run with: llmguard run {args.suite} --lock {path}")
    return 0
