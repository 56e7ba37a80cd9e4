"""The in-toto Statement v1 a run attests, and its well-formedness check.

Subjects are the model artifacts the decision is about: one per suite model, named by
its role in the suite (``candidate``, ``baseline``), with the sha256 the run computed
(of the file, or of the folder's sorted manifest; see :mod:`llmguard_ops.artifacts`).
A suite without models names its datasets instead, and a suite with neither names
itself, because a Statement needs at least one subject.

The predicate (``PREDICATE_TYPE``) holds the full report plus the facts an auditor
looks up first: decision, suite digest and raw text (``${ENV}`` references as written,
never their values), dataset digests, plugins, environment, seeds, waivers, the lock
the run was held to, the signer, and the digest of every output file.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .dsse import VerificationError, no_duplicates

if TYPE_CHECKING:
    from ..loading import LoadedSuite
    from ..report import Report

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://llmguard.dev/attestation/report/v1"
_HEX = re.compile(r"^[0-9a-f]+$")


def canonical_bytes(data: Any) -> bytes:
    """Stable JSON bytes (sorted keys, no whitespace, UTF-8, no NaN) for hashing and signing."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def subjects(report: Report) -> list[dict[str, Any]]:
    """One ResourceDescriptor per model (else per dataset, else the suite file)."""
    out = []
    for name, model in report.models.items():
        out.append(
            {
                "name": name,
                "digest": {"sha256": model["sha256"]},
                "annotations": {
                    "kind": "model",
                    "loader": model.get("loader"),
                    "path": model.get("path"),
                    "digest": model.get("digest"),
                },
            }
        )
    if not out:
        for name, data in report.datasets.items():
            out.append(
                {
                    "name": name,
                    "digest": {"sha256": data["sha256"]},
                    "annotations": {
                        "kind": "dataset",
                        "path": data.get("path"),
                        "digest": "file-sha256",
                    },
                }
            )
    if not out:
        out.append(
            {
                "name": report.suite.name,
                "digest": {"sha256": report.suite.sha256},
                "annotations": {
                    "kind": "suite",
                    "path": report.suite.path,
                    "digest": "file-sha256",
                },
            }
        )
    return out


def build_statement(
    report: Report,
    loaded: LoadedSuite,
    *,
    signer: dict[str, Any] | None,
    outputs: dict[str, str],
    lock: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Statement for one run. ``outputs`` maps output file names to their sha256."""
    from .. import __version__

    body = report.to_json_dict()
    predicate = {
        "producer": {"name": "llmguard-ops", "version": __version__},
        "run_id": report.run_id,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "decision": {
            "decision": report.decision.decision.value,
            "reasons": list(report.decision.reasons),
        },
        "suite": {
            "name": report.suite.name,
            "sha256": loaded.sha256,
            "content": loaded.text,
            "path": report.suite.path,
            "overrides": list(loaded.overrides),
        },
        "datasets": {
            n: {"sha256": d["sha256"], "path": d.get("path"), "rows": d.get("rows")} for n, d in report.datasets.items()
        },
        "plugins": {
            "installed": dict(report.plugins),
            "checks": {c.id: {"uses": c.uses, "plugin": c.plugin, "version": c.plugin_version} for c in report.checks},
        },
        "environment": body.get("environment", {}),
        "seeds": {"suite": report.suite.seed, "checks": {c.id: c.seed for c in report.checks}},
        "waivers": list(report.waivers),
        "lock": lock,
        "approvals": (
            loaded.suite.policy.approvals.model_dump(mode="json") if loaded.suite.policy.approvals is not None else None
        ),
        "signer": signer,
        "outputs": dict(sorted(outputs.items())),
        "report": body,
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(report),
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def parse_statement(payload: bytes) -> dict[str, Any]:
    """Parse a verified payload and check it is a well-formed in-toto Statement v1."""

    def constant(name: str) -> Any:
        raise VerificationError(f"the payload holds {name}, which JSON does not define")

    try:  # a key given twice is refused: parsers disagree on which value wins
        statement = json.loads(payload, object_pairs_hook=no_duplicates, parse_constant=constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"the payload is not JSON: {exc}") from None
    if not isinstance(statement, dict):
        raise VerificationError("the payload is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(f"_type is {statement.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    subject = statement.get("subject")
    if not isinstance(subject, list) or not subject:
        raise VerificationError("a Statement needs a non-empty subject list")
    for i, item in enumerate(subject):
        digest = item.get("digest") if isinstance(item, dict) else None
        if not isinstance(digest, dict) or not digest:
            raise VerificationError(f"subject[{i}] has no digest")
        for alg, value in digest.items():
            if not isinstance(value, str) or not _HEX.match(value):
                raise VerificationError(f"subject[{i}].digest.{alg} is not lowercase hex")
        if "sha256" in digest and len(digest["sha256"]) != 64:
            raise VerificationError(f"subject[{i}].digest.sha256 is not 64 hex digits")
    ptype = statement.get("predicateType")
    if not isinstance(ptype, str) or not re.match(r"^[a-z][a-z0-9+.-]*://", ptype):
        raise VerificationError("predicateType is not a URI")
    if "predicate" in statement and not isinstance(statement["predicate"], dict):
        raise VerificationError("predicate is not an object")
    return statement
