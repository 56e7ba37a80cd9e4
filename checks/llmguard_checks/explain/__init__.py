"""explain.shap and explain.lime: attributions, stability against the baseline, agreement.

Importing this module imports neither shap, lime nor scikit-learn, torch or matplotlib:
they load when the check runs. See ``docs/explain.md`` for the parameters, the metrics and the
statistics behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import CardSection, CheckDefinition, DatasetRef, MetricSpec, ModelRef, hookimpl


class ShapParams(BaseModel):
    """Parameters of ``explain.shap`` (the suite's ``with:``)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model to explain.")
    dataset: DatasetRef = Field("current", description="Rows (or texts) to explain.")
    baseline: ModelRef | None = Field(
        None,
        description="Explain this model on the same rows: rank_correlation_vs_baseline, top_k_overlap.",
    )
    reference: DatasetRef | None = Field(
        None,
        description="Also explain the model here: attribution drift reference → dataset. "
        "Its rows are the background sample too.",
    )
    explainer: Literal["auto", "tree", "linear", "permutation"] = Field(
        "auto",
        description="auto: tree → TreeExplainer, linear → LinearExplainer, else PermutationExplainer.",
    )
    max_samples: int = Field(
        500, ge=2, description="Rows (texts) explained per model and dataset, drawn with the seed."
    )
    background: int = Field(100, ge=1, description="Background rows for linear and model-agnostic explainers.")
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
    top_k: int = Field(5, ge=1, description="Size of the top-feature set for overlap and the protected gate.")
    class_label: Any = Field(None, description="Class whose output is explained (default: the positive class).")
    protected: list[str] | None = Field(
        None,
        description="Features (tokens) that must stay out of the top k; default: the dataset's sensitive columns.",
    )
    proxy_threshold: float = Field(
        0.3,
        gt=0,
        le=1,
        description="A feature whose association with a protected column reaches this is a proxy.",
    )
    additivity_tolerance: float = Field(1e-6, gt=0, description="Warn when base + Σ SHAP misses the output by more.")
    n_local: int = Field(3, ge=0, le=50, description="Local explanations of the most uncertain rows in the report.")
    n_resamples: int = Field(
        200, ge=0, description="Bootstrap resamples (and permutations) for intervals and p-values."
    )
    plots: bool = Field(True, description="Save importance bar and beeswarm plots as PNG artifacts.")


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
    MetricSpec("top_k_overlap", "share of the baseline's top-k features in the candidate's top k", True),
    MetricSpec(
        "attribution_drift",
        "total-variation distance of normalised importances, reference → current (permutation-test p-value)",
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


class LimeParams(BaseModel):
    """Parameters of ``explain.lime`` (the suite's ``with:``)."""

    model_config = ConfigDict(extra="forbid")

    model: ModelRef = Field("candidate", description="Model to explain.")
    dataset: DatasetRef = Field("current", description="Rows (or texts) to explain.")
    baseline: ModelRef | None = Field(
        None,
        description="Explain this model on the same rows: rank_correlation_vs_baseline, top_k_overlap.",
    )
    reference: DatasetRef | None = Field(
        None, description="Dataset whose rows are LIME's training sample (default: dataset)."
    )
    max_samples: int = Field(50, ge=2, description="Rows (texts) explained, drawn with the seed.")
    num_samples: int = Field(1000, ge=10, description="LIME perturbations per row (text).")
    max_model_rows: int = Field(
        2_000_000,
        ge=1,
        description="Budget: max_samples x num_samples may not exceed this (an error, not a cut).",
    )
    background: int = Field(
        200,
        ge=2,
        description="Training rows LIME draws its statistics from (and SHAP's background).",
    )
    discretize_continuous: bool = Field(
        True, description="LIME's quartile discretisation of continuous features (its default)."
    )
    time_limit_s: float | None = Field(
        120.0, gt=0, description="Stop explaining further rows past this many seconds per model."
    )
    top_k: int = Field(5, ge=1, description="Size of the top-feature set.")
    class_label: Any = Field(None, description="Class explained (default: the positive class).")
    protected: list[str] | None = Field(
        None,
        description="Features (tokens) that must stay out of the top k; default: sensitive columns.",
    )
    proxy_threshold: float = Field(0.3, gt=0, le=1, description="Association at which a feature is a proxy.")
    shap_agreement: bool = Field(True, description="Also explain the rows with SHAP and report shap_lime_agreement.")
    max_evals: int | None = Field(
        None,
        ge=3,
        description="SHAP evaluations per row for the agreement (model-agnostic explainers).",
    )
    n_local: int = Field(3, ge=0, le=50, description="Local explanations in the report.")
    n_resamples: int = Field(200, ge=0, description="Bootstrap resamples for intervals.")
    plots: bool = Field(True, description="Save the importance bar plot as a PNG artifact.")


LIME_METRICS = (
    MetricSpec("importance.*", "mean |LIME weight| of a feature (or token), bootstrap interval"),
    MetricSpec(
        "rank_correlation_vs_baseline",
        "Spearman correlation of candidate and baseline importances",
        True,
    ),
    MetricSpec("top_k_overlap", "share of the baseline's top-k features in the candidate's top k", True),
    MetricSpec("protected_in_top_k", "protected features and their proxies among the top k", False),
    MetricSpec("shap_lime_agreement", "Spearman correlation of global |LIME| and |SHAP| importances", True),
    MetricSpec(
        "shap_lime_row_agreement",
        "mean over rows of the Spearman correlation of |LIME| and |SHAP|",
        True,
    ),
    MetricSpec("local_fit", "mean R² of LIME's local surrogate on its perturbed samples", True),
)


def _run_lime(ctx: Any, params: LimeParams) -> Any:
    from ._lime_check import run_lime

    return run_lime(ctx, params)


def _run(ctx: Any, params: ShapParams) -> Any:
    from ._check import run_shap

    return run_shap(ctx, params)


#: The model card's Explanations section, shared by both explainers.
EXPLANATIONS = CardSection(
    "Explanations",
    order=20,
    render="features",
    empty="No explanation check (`explain.*`) ran in this suite.",
)


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register ``explain.shap`` and ``explain.lime``."""
    register(
        CheckDefinition(
            name="explain.shap",
            run=_run,
            params=ShapParams,
            metrics=METRICS,
            summary="SHAP importance, top features, stability vs baseline, attribution drift, protected-feature gate.",
            card_section=EXPLANATIONS,
            tags=("explanation",),
            packages=("shap",),
        )
    )
    register(
        CheckDefinition(
            name="explain.lime",
            run=_run_lime,
            params=LimeParams,
            metrics=LIME_METRICS,
            summary="LIME importance, top features, stability vs baseline, protected-feature gate, "
            "agreement with SHAP.",
            card_section=EXPLANATIONS,
            tags=("explanation",),
        )
    )
