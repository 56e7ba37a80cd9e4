"""Bind the registry alias to the gate: act on the decision of a run.

Configuration, most specific first:

* suite ``metadata.mlflow``: ``model`` (the suite model that is the candidate), ``alias``
  (default ``champion``), ``public_key`` (PEM path, relative to the suite file),
  ``tracking_uri``;
* environment: ``LLMGUARD_MLFLOW_MODEL``, ``LLMGUARD_MLFLOW_ALIAS``,
  ``LLMGUARD_MLFLOW_PUBLIC_KEY``, ``MLFLOW_TRACKING_URI``.

The public key is the exception: ``LLMGUARD_MLFLOW_PUBLIC_KEY`` wins over the suite, so an
operator's trust anchor cannot be swapped by editing the suite under review.

Without ``model`` the candidate is the suite's only ``mlflow`` model, else the one named
``candidate``. A run with no ``mlflow`` model is none of this plugin's business.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .attestation import ATTESTATION, AttestationError, verify_run
from .loader import client, loaded_versions, parse_description

if TYPE_CHECKING:
    from llmguard_ops import Report

TAG_PREFIX = "llmguard."
_OPTIONAL_TAGS = {"attestation_sha256", "attestation_keyid", "promotion_refused"}
_TAG_LIMIT = 4000  # MLflow stores tag values up to 5000 characters in every backend


@dataclass(frozen=True)
class Target:
    """The registered version a run decided about, and where to act on it."""

    model: str
    name: str
    version: str
    sha256: str
    tracking_uri: str
    registry_uri: str
    alias: str
    public_key: Path | None


def _setting(config: dict[str, Any], key: str, env: str) -> str | None:
    value = config.get(key) or os.environ.get(env)
    return str(value) if value else None


def target(report: Report) -> Target | None:
    """The candidate registered version of ``report``, or None when the run used no registry model."""
    ours = {n: m for n, m in report.models.items() if m.get("loader") == "mlflow"}
    if not ours:
        return None
    config = report.suite.metadata.get("mlflow") or {}
    if not isinstance(config, dict):
        raise ValueError("suite metadata.mlflow must be a mapping")
    model = _setting(config, "model", "LLMGUARD_MLFLOW_MODEL")
    if model is None:
        model = next(iter(ours)) if len(ours) == 1 else "candidate"
    if model not in ours:
        raise ValueError(
            f"metadata.mlflow.model '{model}' is not an mlflow model of the suite "
            f"(mlflow models: {', '.join(sorted(ours))})"
        )
    described = parse_description(ours[model].get("digest"))
    if described is None:
        raise ValueError(f"model '{model}' has no registered version in the report")
    name, version = described
    sha256 = str(ours[model]["sha256"])
    seen = loaded_versions.get(sha256)
    uri = config.get("tracking_uri") or (seen.tracking_uri if seen else None) or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ValueError("no MLflow tracking URI to act on: set metadata.mlflow.tracking_uri or MLFLOW_TRACKING_URI")
    registry = config.get("registry_uri") or (seen.registry_uri if seen else None) or uri
    # the trust anchor belongs to whoever runs the gate, not to the suite under review:
    # the environment's key wins over the suite's
    key = os.environ.get("LLMGUARD_MLFLOW_PUBLIC_KEY") or config.get("public_key")
    key_path = None
    if key is not None:
        key_path = Path(os.path.expanduser(key))
        if not key_path.is_absolute():
            key_path = Path(report.suite.path).parent / key_path
    return Target(
        model=model,
        name=name,
        version=version,
        sha256=sha256,
        tracking_uri=uri,
        registry_uri=registry,
        alias=_setting(config, "alias", "LLMGUARD_MLFLOW_ALIAS") or "champion",
        public_key=key_path,
    )


def _decision_record(report: Report, where: Target, promoted: bool, refusal: str | None) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "suite": report.suite.name,
        "suite_sha256": report.suite.sha256,
        "decision": report.decision.decision.value,
        "reasons": list(report.decision.reasons),
        "model": f"models:/{where.name}/{where.version}",
        "sha256": where.sha256,
        "alias": where.alias,
        "alias_moved": promoted,
        "refused": refusal,
    }


def _attach(mlflow_client: Any, run_id: str | None, report: Report, out_dir: Path, record: dict[str, Any]) -> None:
    """Log report, attestation and decision into ``llmguard/<run id>/`` of the version's run."""
    if not run_id:
        return  # a version registered without a run has nowhere to hold files; tags still say it all
    folder = f"llmguard/{report.run_id}"
    for name in ("report.json", ATTESTATION, "summary.md"):
        if (out_dir / name).is_file():
            mlflow_client.log_artifact(run_id, str(out_dir / name), artifact_path=folder)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "decision.json"
        path.write_text(json.dumps(record, indent=2), encoding="utf-8")
        mlflow_client.log_artifact(run_id, str(path), artifact_path=folder)


def _remember_previous(mlflow_client: Any, where: Target) -> None:
    """Tag the version about to become champion with the one the alias leaves (for rollback)."""
    from .rollback import PREVIOUS_TAG

    try:
        previous = mlflow_client.get_model_version_by_alias(where.name, where.alias)
    except Exception:  # the alias does not exist yet: nothing to roll back to
        return
    if str(previous.version) != str(where.version):
        mlflow_client.set_model_version_tag(where.name, where.version, PREVIOUS_TAG, str(previous.version))


def on_decision(report: Report, out_dir: Path) -> None:
    """Tag the candidate version; on a PROMOTE with a valid attestation, move the alias to it.

    The alias moves last, after the evidence is attached. A PROMOTE whose attestation
    does not verify leaves the alias, tags the version with the refusal and raises, so
    the run shows a warning naming the reason.
    """
    where = target(report)
    if where is None:
        return
    decision = report.decision.decision.value
    refusal = None
    verified = None
    if decision == "PROMOTE":
        try:
            if where.public_key is None:
                raise AttestationError(
                    "no public key configured (metadata.mlflow.public_key or LLMGUARD_MLFLOW_PUBLIC_KEY)"
                )
            verified = verify_run(Path(out_dir), where.public_key, report.run_id, where.model, where.sha256)
        except AttestationError as exc:
            refusal = str(exc)
    promote = decision == "PROMOTE" and verified is not None
    mlflow_client = client(where.tracking_uri, where.registry_uri)
    version = mlflow_client.get_model_version(where.name, where.version)
    record = _decision_record(report, where, promote, refusal)
    tags = {
        "decision": decision,
        "run_id": report.run_id,
        "suite": report.suite.name,
        "reasons": "; ".join(report.decision.reasons) or "-",
        "sha256": where.sha256,
    }
    if verified is not None:
        tags.update({"attestation_sha256": verified.sha256, "attestation_keyid": verified.keyid})
    if refusal is not None:
        tags["promotion_refused"] = refusal
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(where.name, where.version, TAG_PREFIX + key, value[:_TAG_LIMIT])
    for key in _OPTIONAL_TAGS - set(tags):  # the tags describe the latest run only: drop an older run's
        if TAG_PREFIX + key in version.tags:
            mlflow_client.delete_model_version_tag(where.name, where.version, TAG_PREFIX + key)
    _attach(mlflow_client, version.run_id, report, Path(out_dir), record)
    if promote:
        _remember_previous(mlflow_client, where)
        mlflow_client.set_registered_model_alias(where.name, where.alias, where.version)
    if refusal is not None:
        raise AttestationError(f"alias '{where.alias}' of {where.name} not moved to version {where.version}: {refusal}")


def promote_approved(out_dir: Path, approvals: Path, trust: Path, public_key: Path | None = None) -> Target:
    """Move the alias to the candidate of a REVIEW whose signed approvals meet its policy.

    What ``llmguard verify --approvals DIR --trust FILE`` accepts, for the run in
    ``out_dir``: the attestation verifies with ``public_key`` (default: the configured
    one), the run's key is in the trust file, ``report.json`` is the attested one, the
    signed decision is this run's REVIEW of this registered version, and the approvals
    satisfy the run's ``policy.approvals``. Raises :class:`AttestationError` otherwise,
    leaving the alias where it is. Needs the host's evidence layer.
    """
    from llmguard_ops import LlmguardError, Report, check_approvals

    out_dir = Path(out_dir)
    report = Report.model_validate_json((out_dir / "report.json").read_text(encoding="utf-8"))
    where = target(report)
    if where is None:
        raise AttestationError(f"{out_dir}: the run used no mlflow model")
    key_path = public_key or where.public_key
    if key_path is None:
        raise AttestationError("no public key configured (metadata.mlflow.public_key or LLMGUARD_MLFLOW_PUBLIC_KEY)")
    try:
        checked = check_approvals(out_dir / ATTESTATION, key_path, approvals, trust, report=out_dir / "report.json")
    except (OSError, LlmguardError) as exc:
        raise AttestationError(str(exc)) from None
    signed = checked.attestation
    problems = list(checked.problems)
    if signed.run_id != report.run_id or signed.decision != "REVIEW":
        problems.append(
            f"the signed decision is {signed.decision!r} of run {signed.run_id!r}, "
            f"not the REVIEW of run {report.run_id!r}"
        )
    if signed.subject_sha256(where.model) != where.sha256:
        problems.append(f"no signed subject '{where.model}' with sha256 {where.sha256[:12]}…")
    mlflow_client = client(where.tracking_uri, where.registry_uri)
    if problems:
        mlflow_client.set_model_version_tag(
            where.name, where.version, TAG_PREFIX + "promotion_refused", "; ".join(problems)[:_TAG_LIMIT]
        )
        raise AttestationError(
            f"alias '{where.alias}' of {where.name} not moved to version {where.version}: " + "; ".join(problems)
        )
    approvers = "; ".join(f"{name} ({role})" for name, role in checked.approvers)
    mlflow_client.set_model_version_tag(where.name, where.version, TAG_PREFIX + "approved_by", approvers[:_TAG_LIMIT])
    mlflow_client.set_model_version_tag(where.name, where.version, TAG_PREFIX + "attestation_sha256", signed.sha256)
    version = mlflow_client.get_model_version(where.name, where.version)
    if TAG_PREFIX + "promotion_refused" in version.tags:
        mlflow_client.delete_model_version_tag(where.name, where.version, TAG_PREFIX + "promotion_refused")
    mlflow_client.set_registered_model_alias(where.name, where.alias, where.version)
    return where
