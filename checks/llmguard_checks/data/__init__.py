"""Data checks: ``data.quality`` and ``data.integrity``.

Registered through the ``llmguard`` entry point ``data``. Importing this package imports
neither pandera, cleanlab, rapidfuzz nor scikit-learn: the check modules are loaded when a
check runs. See ``docs/data.md`` for parameters, metrics and methods.
"""

from __future__ import annotations

from collections.abc import Callable

from llmguard_ops import CheckDefinition, MetricSpec, hookimpl

from .._lazy import lazy_function
from .params import IntegrityParams, QualityParams

_CP = "(Clopper-Pearson interval)"

QUALITY_METRICS = (
    MetricSpec("row_count", "rows in the dataset", None, "rows"),
    MetricSpec("contract_violation_rate", f"share of rows breaking the data contract {_CP}", False),
    MetricSpec("contract_failed_checks", "contract checks that failed (column and table checks)", False),
    MetricSpec("columns_violating", "columns with at least one contract failure", False),
    MetricSpec("column_violation_rate.*", f"share of rows breaking the contract of one column {_CP}", False),
    MetricSpec("duplicate_row_rate", f"share of rows repeating an earlier row {_CP}", False),
    MetricSpec("conflicting_label_rate", f"share of rows whose features recur with another target {_CP}", False),
    MetricSpec("outlier_rate", f"share of rows an IsolationForest fit on the reference calls outliers {_CP}", False),
)

INTEGRITY_METRICS = (
    MetricSpec("exact_overlap_rate", f"share of evaluation rows present in the training set {_CP}", False),
    MetricSpec("exact_overlap_rows", "evaluation rows present in the training set", False, "rows"),
    MetricSpec("near_duplicate_rate", f"share of evaluation texts near-duplicating a training text {_CP}", False),
    MetricSpec("leakage_suspects", "features that alone predict the target implausibly well", False),
    MetricSpec("max_feature_auc", "highest single-feature out-of-fold ROC AUC (classification)", False),
    MetricSpec("max_feature_r2", "highest single-feature out-of-fold R² (regression)", False),
    MetricSpec("feature_auc.*", "out-of-fold ROC AUC of one feature alone", None),
    MetricSpec("feature_r2.*", "out-of-fold R² of one feature alone", None),
    MetricSpec("label_issue_rate", f"share of evaluation labels confident learning flags as wrong {_CP}", False),
    MetricSpec("label_issues", "evaluation rows flagged as label errors", False, "rows"),
)


#: The limitation the model card lists when a suite has no data check.
UNASSESSED = (
    "the evaluation data was not checked for duplicates, training-set copies, leakage or "
    "label errors (no `data.*` check)"
)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register data.quality and data.integrity."""
    register(
        CheckDefinition(
            name="data.quality",
            run=lazy_function(f"{__name__}.quality", "run_quality"),
            params=QualityParams,
            metrics=QUALITY_METRICS,
            summary="Data contract (pandera), duplicate and conflicting rows, outliers against the reference.",
            unassessed=UNASSESSED,
        )
    )
    register(
        CheckDefinition(
            name="data.integrity",
            run=lazy_function(f"{__name__}.integrity", "run_integrity"),
            params=IntegrityParams,
            metrics=INTEGRITY_METRICS,
            summary="Train/evaluation overlap, leakage suspects, label errors (cleanlab confident learning).",
            unassessed=UNASSESSED,
        )
    )
