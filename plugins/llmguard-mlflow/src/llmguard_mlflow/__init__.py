"""llmguard-mlflow: gate MLflow model registry promotions with llmguard-ops.

* model loader ``mlflow``: ``path: models:/credit@champion`` or ``models:/credit/3``;
* ``llmguard_on_decision``: on PROMOTE with a valid signed attestation, move the alias
  (default ``champion``) to the evaluated version and attach the evidence; on BLOCK or
  REVIEW, leave the alias and tag the version with the decision and reasons;
* ``llmguard_incident_step`` ``mlflow.rollback``: move the alias back to the previous
  champion when a monitored window fires (see :mod:`.rollback`).

This module imports neither mlflow nor sklearn: every ``llmguard`` command imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmguard_ops import ModelLoader, hookimpl

from . import loader, promote

if TYPE_CHECKING:
    from llmguard_ops import Report

__version__ = "0.1.0"


@hookimpl
def llmguard_register_model_loaders(register: Callable[[ModelLoader], None]) -> None:
    register(
        ModelLoader(
            name="mlflow",
            load=loader.load,
            digest=loader.digest,
            needs_path=False,  # the path is a models:/ URI, not a file next to the suite
            summary="A registered MLflow model version (models:/name@alias or models:/name/version).",
        )
    )


@hookimpl
def llmguard_on_decision(report: Report, out_dir: Path) -> None:
    promote.on_decision(report, out_dir)


@hookimpl
def llmguard_incident_step(
    step: str, params: dict[str, Any], report: Report, out_dir: Path, dry_run: bool
) -> str | None:
    """``mlflow.rollback``: move the alias back to the previous champion (see :mod:`.rollback`)."""
    if step != "mlflow.rollback":
        return None
    from .rollback import rollback

    return rollback(params, report, out_dir, dry_run)
