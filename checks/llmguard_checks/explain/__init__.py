"""explain.shap: SHAP attributions, stability against the baseline, text attributions.

Importing this module imports neither shap nor scikit-learn, torch or matplotlib: they
load when the check runs. See ``docs/explain.md`` for the parameters, the metrics and the
statistics behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CheckDefinition, DatasetRef, MetricSpec, ModelRef, hookimpl


class ShapParams(BaseModel):
    """Parameters of ``explain.shap`` (the suite's ``with:``)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model to explain.")
    dataset: DatasetRef = Field("current", description="Rows (or texts) to explain.")
    baseline: ModelRef | None = Field(
        None,
        description="Explain this model on the same rows: rank_correlation_vs_baseline, "
        "top_k_overlap.",
    )
    reference: DatasetRef | None = Field(
        None,
        description="Also explain the model here: attribution drift reference → dataset. "
        "Its rows are the background sample too.",
    )
    explainer: Literal["auto", "tree", "linear", "permutation"] = Field(
        "auto",
        description="auto: tree → TreeExplainer, linear → LinearExplainer, "
        "else PermutationExplainer.",
    )
    max_samples: int = Field(
        500, ge=2, description="Rows (texts) explained per model and dataset, drawn with the seed."
    )
    background: int = Field(
        100, ge=1, description="Background rows for linear and model-agnostic explainers."
    )
    max_evals: int | None = Field(
        None,
        ge=3,
        description="Model evaluations per row for model-agnostic and text explainers "
        "(default: 10 permutations for tabular, 200 for text).",
    )
    time_limit_s: float | None = Field(
        120.0,
        gt=0,
        description="Stop explaining further batches of rows past this many seconds per model.",
    )
    top_k: int = Field(
        5, ge=1, description="Size of the top-feature set for overlap and the protected gate."
    )
    class_label: Any = Field(
        None, description="Class whose output is explained (default: the positive class)."
    )
    protected: list[str] | None = Field(
        None,
        description="Features (tokens) that must stay out of the top k; "
        "default: the dataset's sensitive columns.",
    )
    proxy_threshold: float = Field(
        0.3,
        gt=0,
        le=1,
        description="A feature whose association with a protected column reaches this is a proxy.",
    )
    additivity_tolerance: float = Field(
        1e-6, gt=0, description="Warn when base + Σ SHAP misses the output by more."
    )
    n_local: int = Field(
        3, ge=0, le=50, description="Local explanations of the most uncertain rows in the report."
    )
    n_resamples: int = Field(
        200, ge=0, description="Bootstrap resamples (and permutations) for intervals and p-values."
    )
    plots: bool = Field(
        True, description="Save importance bar and beeswarm plots as PNG artifacts."
    )


METRICS = (
    MetricSpec(
        "importance.*",
        "mean |SHAP| of a feature (or token) over the explained rows, bootstrap interval",
    ),
    MetricSpec(
        "rank_correlation_vs_baseline",
        "Spearman correlation of candidate and baseline importances",
        True,
    ),
    MetricSpec(
        "top_k_overlap", "share of the baseline's top-k features in the candidate's top k", True
    ),
    MetricSpec(
        "attribution_drift",
        "total-variation distance of normalised importances, reference → current "
        "(permutation-test p-value)",
        False,
    ),
    MetricSpec(
        "rank_correlation_vs_reference",
        "Spearman correlation of importances on reference and current",
        True,
    ),
    MetricSpec("protected_in_top_k", "protected features and their proxies among the top k", False),
    MetricSpec(
        "additivity_error",
        "max |base value + sum of SHAP - model output| over explained rows",
        False,
    ),
)


def _run(ctx: Any, params: ShapParams) -> Any:
    from ._check import run_shap

    return run_shap(ctx, params)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register ``explain.shap``."""
    register(
        CheckDefinition(
            name="explain.shap",
            run=_run,
            params=ShapParams,
            metrics=METRICS,
            summary="SHAP importance, top features, stability vs baseline, attribution drift, "
            "protected-feature gate.",
        )
    )
