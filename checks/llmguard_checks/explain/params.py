"""Parameters of ``explain.shap`` and ``explain.lime`` (the suite's ``with:``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmguard_ops import DatasetRef, ModelRef


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
