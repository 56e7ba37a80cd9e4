"""The ``mlflow.rollback`` incident step: move the registry alias back to the previous champion.

When the plugin moves an alias on a PROMOTE it tags the new version with
``llmguard.previous_champion`` (the version the alias left). On an incident the step
reads the version the alias points to now and moves the alias back to that tag's
version (or to ``with.to_version``), tagging the demoted version
``llmguard.rolled_back`` with the run and window that caused it.

Step parameters (``with:``), all optional: ``name`` (registered model; default the
suite's mlflow candidate), ``alias`` (default as for promotion, ``champion``),
``to_version``, ``tracking_uri``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .loader import client

if TYPE_CHECKING:
    from llmguard_ops import Report

PREVIOUS_TAG = "llmguard.previous_champion"
ROLLED_BACK_TAG = "llmguard.rolled_back"


def rollback(params: dict[str, Any], report: Report, out_dir: Path, dry_run: bool) -> str:
    from .promote import target

    where = target(report)
    name = params.get("name") or (where.name if where else None)
    alias = params.get("alias") or (where.alias if where else "champion")
    uri = params.get("tracking_uri") or (where.tracking_uri if where else None)
    if not name or not uri:
        raise ValueError(
            "mlflow.rollback: no registered model to act on (set with.name and with.tracking_uri, "
            "or gate an mlflow model)"
        )
    registry = where.registry_uri if where and not params.get("tracking_uri") else uri
    mlflow_client = client(uri, registry)
    current = mlflow_client.get_model_version_by_alias(name, alias)
    previous = params.get("to_version") or current.tags.get(PREVIOUS_TAG)
    if not previous:
        raise LookupError(
            f"mlflow.rollback: version {current.version} of {name} records no previous champion "
            f"({PREVIOUS_TAG}); set with.to_version"
        )
    previous = str(previous)
    if previous == str(current.version):
        raise ValueError(f"mlflow.rollback: alias '{alias}' of {name} is already on version {previous}")
    mlflow_client.get_model_version(name, previous)  # must exist
    move = f"alias '{alias}' of {name}: version {current.version} → {previous}"
    if dry_run:
        return f"would move {move}"
    mlflow_client.set_model_version_tag(
        name, str(current.version), ROLLED_BACK_TAG, f"run {report.run_id}: {report.decision.decision.value}"
    )
    mlflow_client.set_registered_model_alias(name, alias, previous)
    return f"moved {move}"
